"""Recovery: drive on what a lost message or a dead worker left behind (the beat's sweep)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import or_, select, update

from bigdata_paas import states
from bigdata_paas.db import changed_rows
from bigdata_paas.dblock import try_exclusive
from bigdata_paas.messaging.publish import (
    publish_chain,
    publish_destroy,
    publish_resize,
    publish_run,
)
from bigdata_paas.models import Instance, utcnow
from bigdata_paas.operations.lifecycle.agents import check_hosts
from bigdata_paas.operations.lifecycle.queueing import drain_queue
from bigdata_paas.operations.lifecycle.transitions import fail, note
from bigdata_paas.runtime import Runtime

log = logging.getLogger(__name__)

#: statuses outside the launch chain whose own step the sweep publishes again when it stalls
OWN_STEP = {states.DESTROYING: "destroy", states.UPDATING: "resize"}


def sweep(rt: Runtime) -> dict[str, int]:
    """Run one sweep unless another process is running one (a second beat, started on
    another machine or by ``honcho start -c beat=2``): that one is skipped, and says so."""
    with try_exclusive(rt.db, "sweep") as held:
        if not held:
            log.warning("sweep skipped: another sweep is running (is more than one beat running?)")
            return {"skipped": 1}
        return _sweep(rt)


def _sweep(rt: Runtime) -> dict[str, int]:
    """Drive on every instance whose last change is older than its deadline.

    The broker is not the source of truth: a worker that died before publishing
    the next step, or a message lost with a broker, leaves an instance that
    only the database knows about. Re-publishing its next step is harmless
    because every step compare-and-sets. An orquestrator command whose
    heartbeat stopped (its worker died) is taken over: a start is run again
    (at most RUN_ATTEMPTS times, then the instance fails), a destroy or a resize is
    published again (a resize that had begun then rolls back). Last, the queue is drained
    (whatever wake-up was lost).
    """
    config = rt.config
    now = utcnow()
    stale = now - timedelta(seconds=config.STALE_AFTER)
    dead = now - timedelta(seconds=config.HEARTBEAT_TIMEOUT)
    counts = {"republished": 0, "restarted": 0, "failed": 0}
    with rt.db.session() as session:
        rows = session.execute(
            select(
                Instance.id,
                Instance.status,
                Instance.started_at,
                Instance.heartbeat_at,
                Instance.run_attempts,
            )
            .where(
                Instance.status.in_((*states.NEXT_STEP, states.DESTROYING, states.UPDATING)),
                Instance.updated_at < stale,
            )
            .order_by(Instance.updated_at)
            .limit(500)
        ).all()
        session.commit()
    for instance_id, status, started_at, heartbeat_at, attempts in rows:
        alive = heartbeat_at is not None and heartbeat_at >= dead
        if status == states.SCHEDULED and started_at is not None:
            if alive:
                continue
            if attempts >= config.RUN_ATTEMPTS:
                if fail(
                    rt,
                    instance_id,
                    "run",
                    f"the orquestrator start was lost {attempts} "
                    "time(s) (its worker stopped); giving up",
                ):
                    counts["failed"] += 1
                continue
            if _release_run_claim(rt, instance_id, dead):
                publish_run(rt.celery, instance_id)
                counts["restarted"] += 1
            continue
        if status in (states.DESTROYING, states.UPDATING) and alive:
            continue
        step = OWN_STEP.get(status) or states.NEXT_STEP[status]
        if not _claim_stale(rt, instance_id, status, stale, step):
            continue  # moved on meanwhile, or another sweep of a backlog took it
        if step == "destroy":
            publish_destroy(rt.celery, instance_id)
        elif step == "resize":
            # lost before it began: it begins; lost mid-way: it rolls back (or finishes)
            publish_resize(rt.celery, instance_id)
        else:
            publish_chain(rt.celery, instance_id, step)
        counts["republished"] += 1
    # Queued instances wait for capacity, not for a message; a wake-up the broker lost is
    # made up for here.
    counts["placed"] = drain_queue(rt)
    # Hosts whose agent fell silent: nothing new lands there, their instances say why.
    counts["hosts_down"] = len(check_hosts(rt))
    if any(counts.values()):
        log.info("sweep: %s", counts)
    return counts


def _claim_stale(rt: Runtime, instance_id: str, status: str, stale, step: str) -> bool:
    """Restart the deadline of an instance still stale in ``status``, saying so in its
    events; True if this sweep won it and is to publish ``step`` again.

    Sweeps pile up while no worker runs (beat keeps sending them): the first one of
    the backlog republishes, the others find the deadline restarted and publish nothing.
    """
    with rt.db.session() as session:
        claimed = changed_rows(
            session,
            update(Instance)
            .where(
                Instance.id == instance_id,
                Instance.status == status,
                Instance.updated_at < stale,
            )
            .values(updated_at=utcnow())
            .execution_options(synchronize_session=False),
        )
        if claimed:
            note(
                session,
                instance_id,
                "sweep",
                status,
                f"no progress for {rt.config.STALE_AFTER:g} s; {step} published again",
            )
        session.commit()
    return bool(claimed)


def _release_run_claim(rt: Runtime, instance_id: str, dead) -> bool:
    """Let another run message claim a start whose heartbeat stopped."""
    with rt.db.session() as session:
        released = changed_rows(
            session,
            update(Instance)
            .where(
                Instance.id == instance_id,
                Instance.status == states.SCHEDULED,
                # none: its worker died between the start's end and the step's
                or_(Instance.heartbeat_at.is_(None), Instance.heartbeat_at < dead),
            )
            .values(run_token=None)
            .execution_options(synchronize_session=False),
        )
        if released:
            note(
                session,
                instance_id,
                "run",
                states.SCHEDULED,
                "orquestrator start lost (no heartbeat); starting it again",
            )
        session.commit()
    return bool(released)
