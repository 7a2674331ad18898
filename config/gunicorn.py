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
# gunicorn's own lines in PAAS_LOG_FORMAT (bigdata_paas/logs.py); each access line ends with
# the request's id, which JSON lines also carry as their request_id
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'
_formatter = {"()": "bigdata_paas.logs.make_formatter", "fmt": _config.LOG_FORMAT}
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"paas": _formatter},
    "filters": {"access": {"()": "bigdata_paas.logs.AccessFilter"}},
    "handlers": {
        "error": {
            "class": "logging.StreamHandler",
            "formatter": "paas",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "paas",
            "filters": ["access"],
            "stream": "ext://sys.stdout",
        },
    },
    # the app's own lines: bigdata_paas.logs.configure sets the root logger up in each worker
    "root": {"level": _config.LOG_LEVEL, "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": _config.LOG_LEVEL, "handlers": ["error"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
    },
}


def post_worker_init(worker) -> None:
    """End this worker's streams first when it is told to stop."""
    stop = signal.getsignal(signal.SIGTERM)

    def stop_streams_then_stop(signum, frame):
        from bigdata_paas.operations.feeds import close_all

        close_all()
        if callable(stop):
            stop(signum, frame)

    signal.signal(signal.SIGTERM, stop_streams_then_stop)
