"""gunicorn settings of bench/streams.py on SQLite: the Procfile's (config/gunicorn.py), plus a
line in $PAAS_BENCH_COUNT_QUERIES for every SQL statement a web worker runs (SQLite has no
server to count them)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.gunicorn import *  # noqa: F403
from config.gunicorn import post_worker_init as _procfile_post_worker_init


def post_worker_init(worker) -> None:
    _procfile_post_worker_init(worker)
    from sqlalchemy import event

    app = worker.wsgi
    path = os.environ["PAAS_BENCH_COUNT_QUERIES"]

    def count(*_args) -> None:
        with open(path, "a") as out:  # one short append: whole lines from every worker
            out.write(f"{os.getpid()}\n")

    for engine in {app.extensions["paas"].db.engine, app.extensions["feeds"].reader}:
        event.listen(engine, "before_cursor_execute", count)
