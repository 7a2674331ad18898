"""Passes over the queue: place queued instances, oldest first, under the placement lock."""

from __future__ import annotations

import json
import logging

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from bigdata_paas import states
from bigdata_paas.messaging.publish import after_commit
from bigdata_paas.models import Instance
from bigdata_paas.operations import allocations
from bigdata_paas.operations.lifecycle.transitions import advance, note
from bigdata_paas.operations.wakeups import drain_started
from bigdata_paas.runtime import Runtime

log = logging.getLogger(__name__)

#: queued instances one pass over the queue looks at, oldest first
QUEUE_PASS_LIMIT = 1000
#: the order queued instances are tried in: the oldest first (ties by id)
QUEUE_ORDER = (Instance.queued_at, Instance.id)


class QueuePass:
    """Place queued instances, oldest first, inside one transaction holding the placement lock.

    Each instance is placed all or nothing (a savepoint). The free inventory is read once per
    strategy, and a scheduler keeps it up to date as instances land, so a pass over hundreds of
    queued instances does not read the hosts once per instance. Placement is pure and
    deterministic, so an instance shaped like one already refused since the last placement is
    refused with the same reason without asking the engine again. Nothing frees capacity while
    the lock is held (releases take it too), so no instance is placed while an older one that
    fits stays queued; a smaller one may pass a bigger one that does not fit (backfill).
    """

    def __init__(self, rt: Runtime, session: Session) -> None:
        self.rt, self.session = rt, session
        self.schedulers: dict[str, allocations.Scheduler] = {}
        self.refused: dict[tuple, str] = {}
        self.placed: list[str] = []

    def run(self, until: tuple | None = None) -> list[str]:
        """Try the queued instances in submission order, up to and including the one queued at
        ``until`` = (queued_at, id) when given; return the ids placed."""
        queued = select(Instance.id, Instance.spec, Instance.wait_reason).where(
            Instance.status == states.QUEUED
        )
        query = queued
        if until is not None:
            queued_at, last = until
            query = query.where(
                or_(
                    Instance.queued_at < queued_at,
                    and_(Instance.queued_at == queued_at, Instance.id <= last),
                )
            )
        waiting = self.session.execute(query.order_by(*QUEUE_ORDER).limit(QUEUE_PASS_LIMIT)).all()
        if until is not None and all(row.id != last for row in waiting):
            # Beyond the limit: it is still tried, after the oldest ones.
            waiting = [*waiting, *self.session.execute(queued.where(Instance.id == last))]
        for instance_id, spec, wait_reason in waiting:
            if self.place(instance_id, spec, wait_reason):
                self.placed.append(instance_id)
        return self.placed

    def place(self, instance_id: str, spec: dict, wait_reason: str | None) -> bool:
        """Place one queued instance; True if placed, else record why it waits."""
        strategy = spec.get("placement_strategy", self.rt.config.PLACEMENT_STRATEGY)
        anti_affinity = spec.get("anti_affinity", "soft")
        shape = (json.dumps(spec["nodes"], sort_keys=True), strategy, anti_affinity)
        for _attempt in range(3):
            reason = self.refused.get(shape)
            if reason is None:
                if strategy not in self.schedulers:
                    self.schedulers[strategy] = allocations.scheduler(self.session, strategy)
                try:
                    result = self.schedulers[strategy].place(
                        allocations.node_demands(spec), anti_affinity=anti_affinity
                    )
                except allocations.NoFit as exc:
                    reason = self.refused[shape] = str(exc)
            if reason is not None:
                if wait_reason != reason:
                    self.session.execute(
                        update(Instance)
                        .where(Instance.id == instance_id, Instance.status == states.QUEUED)
                        .values(wait_reason=reason)
                        .execution_options(synchronize_session=False)
                    )
                    note(self.session, instance_id, "schedule", states.QUEUED, f"waiting: {reason}")
                return False
            # This placement changes the capacity: the refusals and the schedulers of other
            # strategies are out of date; this scheduler already holds the placement.
            self.schedulers = {strategy: self.schedulers[strategy]}
            self.refused.clear()
            savepoint = self.session.begin_nested()
            try:
                allocations.commit_placement(self.session, instance_id, spec, result)
            except allocations.AllocationConflict as exc:
                log.info("placement of %s conflicted (%s); retrying", instance_id, exc)
                savepoint.rollback()
                self.schedulers.clear()
                continue
            hosts = sorted({p.host for p in result.nodes.values()})
            if not advance(
                self.session,
                instance_id,
                "schedule",
                states.SCHEDULED,
                f"placed on {', '.join(hosts)}",
                wait_reason=None,
            ):
                # Destroyed meanwhile (the API does not take the placement lock): keep nothing.
                savepoint.rollback()
                self.schedulers.clear()
                return False
            savepoint.commit()
            return True
        return False


def try_schedule(rt: Runtime, instance_id: str) -> bool | None:
    """Place the queued instances up to this one in submission order, then this one if it
    fits; True if it was placed, False if it waits, None if it is not queued.

    A launch therefore never passes an older queued instance that fits now, even when its own
    schedule step runs first; the older ones placed here get their run published.
    """
    with rt.db.session() as session:
        allocations.lock_placement(session)
        row = session.execute(
            select(Instance.status, Instance.queued_at).where(Instance.id == instance_id)
        ).first()
        if row is None or row.status != states.QUEUED:
            session.commit()
            return None
        placed = QueuePass(rt, session).run(until=(row.queued_at, instance_id))
        for other in placed:
            if other != instance_id:  # this one's run is the next link of its own chain
                after_commit(session, "pipeline.run", other)
        session.commit()
    return instance_id in placed


def schedule(rt: Runtime, instance_id: str) -> str:
    """Place the instance now if capacity allows, after the older queued ones; otherwise it
    stays queued."""
    placed = try_schedule(rt, instance_id)
    if placed is None:
        return "skipped"
    return states.SCHEDULED if placed else states.QUEUED


def drain_queue(rt: Runtime) -> int:
    """Try queued instances in submission order; each that fits is scheduled and run.

    The whole pass is one transaction under the placement lock, which releases take too: no
    capacity can appear between two tries and go to a later instance than one just refused.
    """
    with rt.db.session() as session:
        allocations.lock_placement(session)
        drain_started(session)
        placed = QueuePass(rt, session).run()
        for instance_id in placed:
            after_commit(session, "pipeline.run", instance_id)
        session.commit()
    return len(placed)
