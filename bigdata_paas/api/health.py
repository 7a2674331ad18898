"""Liveness of the web process, the database and the broker; no auth, no secrets."""

from __future__ import annotations

from bigdata_paas.api import schemas
from bigdata_paas.api.common import Blueprint, runtime
from bigdata_paas.operations import health as ops

blp = Blueprint("health", __name__, description="Liveness")


@blp.route("/health", methods=["GET"])
@blp.doc(security=[])
@blp.alt_response(503, schema=schemas.HealthOut, description="the database or broker is down")
@blp.response(200, schemas.HealthOut, description="all up")
def health():
    """Report whether the web process, the database and the broker answer."""
    body = ops.check(runtime())
    return body, 200 if body["status"] == "ok" else 503
