"""gunicorn settings of the web process (``gunicorn -c config/gunicorn.py wsgi:app``).

Worker class ``gthread``: an open event stream holds one thread while it waits (a few KB of
Python frame, no CPU), so ``PAAS_WEB_WORKERS`` x ``PAAS_WEB_THREADS`` threads hold that many
streams, and each worker keeps a reserve of threads that streams may not take
(``Config.stream_limit``) so ordinary requests always find one. Not gevent: it runs the app,
but a launch took 7x as long under it, the publishing of its chain, and a read 3x
(docs/streams.md); a thread per stream is cheap enough for hundreds of them. Not sync: one
request per process.

The command line wins over these (``--bind``, ``--workers`` ...). On SIGTERM a worker first
ends its streams (clients resume from their last event, on another worker or after the
restart), then finishes its other requests within ``graceful_timeout``.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# after the path: gunicorn loads this file by path, the repository may not be on sys.path
from bigdata_paas.settings import Config

_config = Config.from_env()

bind = f"{_config.HOST}:{_config.PORT}"
workers = _config.WEB_WORKERS
worker_class = "gthread"
threads = _config.WEB_THREADS
graceful_timeout = 10
accesslog = "-"


def post_worker_init(worker) -> None:
    """End this worker's streams first when it is told to stop."""
    stop = signal.getsignal(signal.SIGTERM)

    def stop_streams_then_stop(signum, frame):
        from bigdata_paas.operations.feeds import close_all

        close_all()
        if callable(stop):
            stop(signum, frame)

    signal.signal(signal.SIGTERM, stop_streams_then_stop)
