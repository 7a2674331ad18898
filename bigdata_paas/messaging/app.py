"""Build the Celery app from the settings; tasks run inside the Flask app context."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

from celery import Celery, Task

from bigdata_paas import logs
from bigdata_paas.messaging.nodename import process_copy
from bigdata_paas.settings import Config

if TYPE_CHECKING:
    from flask import Flask

PIPELINE_QUEUE = "pipeline"
ORQUESTRATOR_QUEUE = "orquestrator"
#: tasks that run orquestrator scripts: long and subprocess-bound, on their own workers
ORQUESTRATOR_TASKS = ("pipeline.run", "pipeline.destroy", "pipeline.resize")
#: kombu's filesystem transport with atomic publishing
FILESYSTEM_TRANSPORT = "bigdata_paas.messaging.fsbroker:Transport"
#: seconds an AMQP socket read or write may block (at least the publish timeout)
SOCKET_TIMEOUT = 10.0


def broker_options(config: Config) -> dict:
    if not config.uses_filesystem_broker:
        # A broker under a memory or disk alarm stops reading from publishers: a confirm
        # (publish.py) and then closing the connection would wait forever. Socket timeouts
        # bound both; replies to the few synchronous AMQP calls come in milliseconds.
        blocked = max(config.PUBLISH_TIMEOUT, SOCKET_TIMEOUT)
        return {"confirm_publish": True, "read_timeout": blocked, "write_timeout": blocked}
    folder = config.broker_path
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for sub in ("queue", "control", "tmp", "staging"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "staging_folder": str(folder / "staging"),  # see pipeline/fsbroker.py
        "control_folder": str(folder / "control"),
        "polling_interval": config.BROKER_POLLING_INTERVAL,
    }


def use_broker_tmp(config: Config) -> None:
    """Keep consumed broker files on the broker's filesystem.

    kombu's filesystem transport consumes a message by moving it into the temp
    directory; across filesystems that move is a copy, which two workers can
    both win. On one filesystem it is a rename, which exactly one wins.
    """
    if config.uses_filesystem_broker:
        tmp = config.broker_path / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(tmp)


def common_settings(config: Config) -> dict:
    """What every Celery app of the platform shares: the broker, JSON, no result backend, and
    late acknowledgement (steps are idempotent), whichever side of the broker it is on."""
    return {
        "broker_url": config.broker_url,
        "broker_transport": FILESYSTEM_TRANSPORT if config.uses_filesystem_broker else None,
        "broker_transport_options": broker_options(config),
        "broker_connection_timeout": config.PUBLISH_TIMEOUT,
        "broker_connection_retry_on_startup": True,
        # The database holds every status; Celery results would be a second truth.
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_create_missing_queues": True,
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_send_task_events": True,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
    }


def beat_schedule_file() -> str:
    """Beat's state file, one per copy of the beat process: two beats started by mistake
    (``honcho start -c beat=2``) must not write one file at once (the sweep's lock in the
    database keeps their sweeps apart)."""
    copy = process_copy()
    return "celerybeat-schedule" if copy == 1 else f"celerybeat-schedule-{copy}"


def celery_init_app(app: Flask, config: Config) -> Celery:
    """Create the Celery app whose tasks push ``app``'s context (Flask's pattern)."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask, set_as_current=True)
    logs.install_celery_signals()
    pipeline_q, orq_q = config.queue(PIPELINE_QUEUE), config.queue(ORQUESTRATOR_QUEUE)
    celery.conf.update(
        **common_settings(config),
        task_default_queue=pipeline_q,
        task_routes={name: {"queue": orq_q} for name in ORQUESTRATOR_TASKS},
        # Orquestrator runs are bounded by their own timeout; this is a backstop.
        # Backstops only: renders and orquestrators enforce their own, shorter limits.
        task_time_limit=int(config.RENDER_TIMEOUT * 2 + 600),
        task_annotations={
            name: {
                "time_limit": int(
                    config.ORQUESTRATOR_MAX_TIMEOUT
                    + config.HEALTH_TIMEOUT
                    + config.NODE_START_TIMEOUT
                    + config.NODE_STOP_TIMEOUT
                    + 600
                )
            }
            for name in ORQUESTRATOR_TASKS
        },
        beat_schedule={"sweep": {"task": "pipeline.sweep", "schedule": config.SWEEP_INTERVAL}},
        beat_schedule_filename=str(config.data_path / beat_schedule_file()),
    )
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
