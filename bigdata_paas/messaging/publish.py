"""Publish pipeline messages, only ever after the database commit that they refer to.

Two ways, both after the commit:

- ``publish_*``: the caller commits, then publishes, and undoes its change when the broker
  cannot take the message (a launch answers 503 and leaves nothing behind).
- ``after_commit``: best-effort wake-ups registered on the session inside the transaction;
  they are sent once the transaction commits, once however many times they were asked for,
  and dropped if it rolls back. An operation that frees capacity wakes the queue itself
  (operations/wakeups.py), so no caller can forget to.
"""

from __future__ import annotations

import json
import logging

from celery import Celery
from celery.utils import uuid
from kombu.exceptions import OperationalError
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from bigdata_paas import states
from bigdata_paas.errors import Unavailable

log = logging.getLogger(__name__)

#: session.info key of the messages waiting for the commit
OUTBOX = "paas.outbox"


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


def chained(celery: Celery, step: str, *args) -> dict:
    """A later step of a chain as the chain's message carries it: the dict of a frozen
    immutable signature (its own task id, answers to this thread's id), in the key order
    Celery writes."""
    return {
        "task": f"pipeline.{step}",
        "args": args,
        "kwargs": {},
        "options": {"task_id": uuid(), "reply_to": celery.thread_oid},
        "subtask_type": None,
        "immutable": True,
    }


def publish_chain(celery: Celery, instance_id: str, first: str = states.LAUNCH_STEPS[0]) -> None:
    """Publish the launch chain from step ``first`` on for a committed instance.

    The message is the one ``chain(...).apply_async()`` sends (the first step, carrying the
    later ones in its ``chain`` field, last first, as the worker pops them, each with its
    own task id), made without the canvas: unrolling, cloning and freezing five signatures
    cost a launch two thirds as much CPU as sending the message.
    tests/pipeline/test_publish.py holds it to the canvas's message.
    """
    head, *later = states.chain_from(first)
    rest = [chained(celery, step, instance_id) for step in reversed(later)]
    publish(celery, signature(celery, head, instance_id).set(chain=rest))


def publish_launch(celery: Celery, instance_id: str) -> None:
    """Start the whole launch chain for a committed instance."""
    publish_chain(celery, instance_id)


def publish_destroy(celery: Celery, instance_id: str) -> None:
    publish(celery, signature(celery, "destroy", instance_id))


def publish_run(celery: Celery, instance_id: str) -> None:
    publish(celery, signature(celery, "run", instance_id))


def publish_resize(celery: Celery, instance_id: str) -> None:
    publish(celery, signature(celery, "resize", instance_id))


def publish_to_agent(
    celery: Celery, queue: str, task: str, *args, expires: float | None = None
) -> None:
    """Send an ``agent.*`` task to a host agent's durable queue (Unavailable when the broker
    is down); ``expires``: seconds after which an agent drops it unrun."""
    publish(celery, celery.signature(task, args=args, queue=queue, expires=expires, immutable=True))


def after_commit(session: Session, task: str, *args, queue: str | None = None) -> None:
    """Publish ``task(*args)`` (to ``queue``, or the task's own) after ``session``'s
    transaction commits; once however often it is asked for. Forgotten if the transaction
    rolls back; best effort (a wake-up, an order to an agent: the sweep and the agents'
    reports are the safety net for one the broker did not take)."""
    key = json.dumps([task, args, queue], sort_keys=True, default=str)
    session.info.setdefault(OUTBOX, {})[key] = (task, args, queue)


def install_outbox(factory: sessionmaker, celery: Celery) -> None:
    """Make ``factory``'s sessions publish their after-commit messages through ``celery``."""

    @event.listens_for(factory, "after_commit")
    def _send(session: Session) -> None:
        for task, args, queue in session.info.pop(OUTBOX, {}).values():
            sig = celery.signature(task, args=args, queue=queue, immutable=True)
            try:
                publish(celery, sig)
            except Unavailable:
                log.warning("could not publish %s after commit; the sweep makes up for it", task)

    @event.listens_for(factory, "after_rollback")
    def _drop(session: Session) -> None:
        session.info.pop(OUTBOX, None)
