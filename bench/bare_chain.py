"""A bare Celery app for the baseline: a 5-task chain of no-ops on the same broker.

The last task appends ``<chain id> <unix time>`` to a file, so the bench needs
no result backend (the platform runs without one too).
"""

from __future__ import annotations

import os
import time

from celery import Celery

from config import Config


def done_file(config: Config) -> str:
    return os.path.join(config.DATA_DIR, "bare-done.txt")


def make_bare_app(config: Config) -> Celery:
    """A Celery app on the platform's broker settings with one no-op task, ``bare.step``."""
    app = Celery("bare", set_as_current=False)
    options, transport = {}, None
    if config.uses_filesystem_broker:
        from bigdata_paas.messaging.app import FILESYSTEM_TRANSPORT, broker_options

        # the platform's own transport, so both sides of the comparison publish alike
        options, transport = broker_options(config), FILESYSTEM_TRANSPORT
    app.conf.update(
        broker_url=config.broker_url,
        broker_transport=transport,
        broker_transport_options=options,
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_default_queue=config.queue("bare"),
        worker_hijack_root_logger=False,
    )
    path = done_file(config)

    @app.task(name="bare.step")
    def step(chain_id: str, last: bool = False) -> None:
        """Do nothing, or on the last link record when the chain finished."""
        if last:
            with open(path, "a") as done:
                done.write(f"{chain_id} {time.time()}\n")

    return app


if os.environ.get("PAAS_BARE_WORKER") == "1":
    from bigdata_paas.messaging.app import use_broker_tmp

    _config = Config.from_env()
    use_broker_tmp(_config)
    app = make_bare_app(_config)
