"""The baseline of bench/get_instance.py: a bare Flask app whose one route answers the body
GET /instances/{id} answered, read from the file ``PAAS_BENCH_BODY`` names.

    gunicorn -c config/gunicorn.py bench.bare_instance:app
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response

BODY = Path(os.environ["PAAS_BENCH_BODY"]).read_bytes()

app = Flask(__name__)


@app.get("/bigdata/api/v1/instances/<instance_id>")
def instance(instance_id: str) -> Response:
    return Response(BODY, 200, mimetype="application/json")
