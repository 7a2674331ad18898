"""The pipeline's Celery tasks: thin, named, taking an instance id; the work is in
operations.lifecycle.

Only named transient errors (the database or broker blinking) are retried. Any
other exception fails the instance with a reason instead of leaving it stuck.
"""

from __future__ import annotations

import functools
import logging

from celery import current_task, shared_task
from flask import current_app
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy.exc import OperationalError as DatabaseOperationalError

from bigdata_paas.errors import DatabaseUnavailable
from bigdata_paas.operations.lifecycle import (
    queueing,
    recovery,
    resizing,
    running,
    steps,
    transitions,
)

log = logging.getLogger(__name__)

#: the database or the broker blinking: a session's failure is DatabaseUnavailable
#: (db.Database.session), a statement outside one an OperationalError
TRANSIENT = (
    DatabaseUnavailable,
    DatabaseOperationalError,
    BrokerOperationalError,
    ConnectionError,
)
RETRY = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 8,
}


def step(name: str, **options):
    """Register ``pipeline.<name>``: run the lifecycle step, fail the instance on a bug."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(instance_id: str) -> str:
            rt = current_app.extensions["paas"]
            try:
                return func(rt, instance_id)
            except TRANSIENT:
                raise
            except Exception as exc:
                log.exception("step %s of instance %s crashed", name, instance_id)
                transitions.fail(
                    rt,
                    instance_id,
                    name,
                    f"internal error in {name}: {type(exc).__name__}: {exc}"[:500],
                )
                return "failed"

        return shared_task(name=f"pipeline.{name}", **RETRY, **options)(wrapper)

    return decorate


@step("prepare")
def prepare(rt, instance_id: str) -> str:
    """Render the template and store the nodes."""
    return steps.prepare(rt, instance_id)


@step("submit")
def submit(rt, instance_id: str) -> str:
    """Check the instance could fit and hand it to the scheduler."""
    return steps.submit(rt, instance_id)


@step("queue")
def queue(rt, instance_id: str) -> str:
    """Take a place in the queue."""
    return steps.queue(rt, instance_id)


@step("schedule")
def schedule(rt, instance_id: str) -> str:
    """Place every node, or stay queued."""
    return queueing.schedule(rt, instance_id)


#: Orquestrator commands may outlast the broker's ack timeout (RabbitMQ: 30 min), so their
#: messages are acknowledged on receipt; a heartbeat in the database and the sweep stand in
#: for redelivery (docs/orquestrators.md).
LONG = {"acks_late": False}


@step("run", **LONG)
def run(rt, instance_id: str) -> str:
    """Run the orquestrator's start."""
    return running.run(rt, instance_id, token=current_task.request.id)


@step("destroy", **LONG)
def destroy(rt, instance_id: str) -> str:
    """Run the orquestrator's stop and release everything."""
    return running.destroy(rt, instance_id)


@shared_task(name="pipeline.resize", **RETRY, **LONG)
def resize(instance_id: str) -> str:
    """Add or remove the nodes of a resize through the orquestrator, or roll it back."""
    rt = current_app.extensions["paas"]
    try:
        return resizing.resize(rt, instance_id)
    except TRANSIENT:
        raise
    except Exception as exc:
        log.exception("the resize of instance %s crashed", instance_id)
        return resizing.abandon(
            rt, instance_id, f"internal error in resize: {type(exc).__name__}: {exc}"[:500]
        )


@shared_task(name="pipeline.drain_queue", **RETRY)
def drain_queue() -> int:
    """Place queued instances, in submission order, that fit now."""
    return queueing.drain_queue(current_app.extensions["paas"])


@shared_task(name="pipeline.sweep", **RETRY)
def sweep() -> dict:
    """Drive on instances whose pipeline message was lost (run by celery beat)."""
    return recovery.sweep(current_app.extensions["paas"])
