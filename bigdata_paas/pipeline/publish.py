"""Publish pipeline messages, only ever after the database commit that they refer to."""

from __future__ import annotations

import logging

from celery import Celery, chain
from kombu.exceptions import OperationalError

from bigdata_paas.errors import Unavailable

log = logging.getLogger(__name__)

LAUNCH_STEPS = ("prepare", "submit", "queue", "schedule", "run")


def signature(celery: Celery, step: str, *args):
    return celery.signature(f"pipeline.{step}", args=args, immutable=True)


def publish(celery: Celery, sig) -> None:
    """Send ``sig``; an unreachable broker becomes Unavailable (503).

    RabbitMQ confirms every message (``confirm_publish``) but, under a memory or disk alarm,
    stops reading from publishers: the confirm is awaited for the publish timeout at most.
    """
    try:
        sig.apply_async(confirm_timeout=celery.conf.broker_connection_timeout)
    except (OperationalError, OSError, ConnectionError) as exc:
        log.warning("broker unreachable while publishing %s: %s", sig.task, exc)
        raise Unavailable("the task broker is unreachable; nothing was started, try again") from exc


def publish_chain(celery: Celery, instance_id: str, steps=LAUNCH_STEPS) -> None:
    """Publish the chain of ``steps`` for a committed instance."""
    publish(celery, chain(*(signature(celery, step, instance_id) for step in steps)))


def publish_launch(celery: Celery, instance_id: str) -> None:
    """Start the chain prepare -> submit -> queue -> schedule -> run for a committed instance."""
    publish_chain(celery, instance_id)


def publish_destroy(celery: Celery, instance_id: str) -> None:
    publish(celery, signature(celery, "destroy", instance_id))


def publish_run(celery: Celery, instance_id: str) -> None:
    publish(celery, signature(celery, "run", instance_id))


def kick_queue(celery: Celery) -> None:
    """Ask a worker to place queued instances now that capacity changed; best effort."""
    try:
        publish(celery, signature(celery, "drain_queue"))
    except Unavailable:
        log.warning("could not publish pipeline.drain_queue; queued instances wait for the next")
