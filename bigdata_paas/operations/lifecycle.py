"""The pipeline's steps as use cases: each re-reads the instance, works, and compare-and-sets.

A step that finds the instance in another status than the one it starts from
does nothing, so a redelivered message (acks_late) or a step that lost a race
with a destroy is harmless. Long work (rendering, orquestrators) happens
outside any transaction: SQLite holds its write lock for a transaction's life.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from bigdata_paas import states
from bigdata_paas.errors import PaasError
from bigdata_paas.models import Event, Instance, LogLine, Node, Service, User, utcnow
from bigdata_paas.operations import placement as placing
from bigdata_paas.orchestration import ScriptLimits, run_script
from bigdata_paas.orchestration.health import check_targets, describe_missing, wait_for_ports
from bigdata_paas.pipeline.publish import (
    LAUNCH_STEPS,
    kick_queue,
    publish_chain,
    publish_destroy,
    publish_run,
)
from bigdata_paas.rendering import build_context, merge_options, render_spec, validate_spec
from bigdata_paas.runtime import Runtime

log = logging.getLogger(__name__)


def advance(
    session: Session,
    instance_id: str,
    step: str,
    from_statuses,
    to: str,
    message: str = "",
    **values,
) -> bool:
    """Move the instance to ``to`` if it is in one of ``from_statuses``; record the event."""
    if isinstance(from_statuses, str):
        from_statuses = (from_statuses,)
    moved = session.execute(
        update(Instance)
        .where(Instance.id == instance_id, Instance.status.in_(from_statuses))
        .values(status=to, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved == 1:
        session.add(Event(instance_id=instance_id, step=step, status=to, message=message))
    return moved == 1


def note(session: Session, instance_id: str, step: str, status: str, message: str) -> None:
    session.add(Event(instance_id=instance_id, step=step, status=status, message=message))


def fail(rt: Runtime, instance_id: str, step: str, reason: str) -> bool:
    """Fail an in-flight instance with a reason and release what it holds."""
    with rt.db.session() as session:
        placing.lock_placement(session)  # first, as placements do: releases take it too
        if not advance(
            session,
            instance_id,
            step,
            (*states.IN_FLIGHT, states.RUNNING),
            states.FAILED,
            reason,
            failed_step=step,
            error=reason[:4000],
            wait_reason=None,
        ):
            return False
        freed = placing.release(session, instance_id)
        session.commit()
    log.info("instance %s failed at %s: %s", instance_id, step, reason)
    if freed:
        kick_queue(rt.celery)
    return True


def _status(session: Session, instance_id: str) -> str | None:
    return session.scalar(select(Instance.status).where(Instance.id == instance_id))


def prepare(rt: Runtime, instance_id: str) -> str:
    """Merge the options, render the template in the sandbox, validate and store the nodes."""
    with rt.db.session() as session:
        instance = session.get(Instance, instance_id)
        if instance is None or instance.status != states.PENDING:
            return "skipped"
        service = session.get(Service, instance.service_id) if instance.service_id else None
        user = session.get(User, instance.user_id)
        job = {
            "options": instance.options,
            "name": instance.name,
            "user": user.name,
            "service": instance.service_name,
            "version": instance.service_version,
            "doc": service.options if service else None,
            "template": service.template if service else None,
            "format": service.template_format if service else "json",
        }
        session.commit()
    try:
        if not job["template"] or job["doc"] is None:
            raise PaasError("the service has no template or options any more")
        merged = merge_options(job["doc"], job["options"])
        context = build_context(
            merged,
            instancename=job["name"],
            clusterid=instance_id,
            clusterdn=f"{job['name']}.{job['user']}",
            user=job["user"],
            service=job["service"],
            version=job["version"],
        )
        spec = validate_spec(
            render_spec(job["template"], context, fmt=job["format"], limits=rt.render_limits()),
            max_nodes=rt.config.MAX_NODES,
        )
    except PaasError as exc:
        fail(rt, instance_id, "prepare", exc.message)
        return "failed"
    with rt.db.session() as session:
        if not advance(
            session,
            instance_id,
            "prepare",
            states.PENDING,
            states.PREPARED,
            f"template rendered: {len(spec['nodes'])} node(s)",
            merged_options=merged,
            spec=spec,
        ):
            return "skipped"
        session.add_all(
            Node(instance_id=instance_id, name=name, cpu=node["cpu"], mem=node["mem"], spec=node)
            for name, node in spec["nodes"].items()
        )
        session.commit()
    return states.PREPARED


def submit(rt: Runtime, instance_id: str) -> str:
    """Check that the instance could ever fit the inventory, then hand it to the scheduler."""
    with rt.db.session() as session:
        instance = session.get(Instance, instance_id)
        if instance is None or instance.status != states.PREPARED:
            return "skipped"
        spec = instance.spec
        reasons, hosts = placing.check_feasible(session, spec)
        # With no host at all the instance waits for the first one instead of failing.
        if reasons and hosts:
            session.commit()
            fail(
                rt,
                instance_id,
                "submit",
                "cannot fit the inventory even when it is empty: " + "; ".join(reasons),
            )
            return "failed"
        cpu = sum(n["cpu"] for n in spec["nodes"].values())
        mem = sum(n["mem"] for n in spec["nodes"].values())
        advance(
            session,
            instance_id,
            "submit",
            states.PREPARED,
            states.SUBMITTED,
            f"{len(spec['nodes'])} node(s), {cpu} cpu, {mem} MB",
        )
        session.commit()
    return states.SUBMITTED


def queue(rt: Runtime, instance_id: str) -> str:
    """Take the instance's place in the queue (submission order)."""
    with rt.db.session() as session:
        moved = advance(
            session,
            instance_id,
            "queue",
            states.SUBMITTED,
            states.QUEUED,
            "waiting for capacity",
            queued_at=utcnow(),
        )
        session.commit()
    return states.QUEUED if moved else "skipped"


#: queued instances one pass over the queue looks at, oldest first
QUEUE_PASS_LIMIT = 1000


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
        self.schedulers: dict[str, placing.Scheduler] = {}
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
        waiting = self.session.execute(
            query.order_by(Instance.queued_at, Instance.id).limit(QUEUE_PASS_LIMIT)
        ).all()
        if until is not None and all(row.id != last for row in waiting):
            # Beyond the limit: it is still tried, after the oldest ones.
            waiting += self.session.execute(queued.where(Instance.id == last)).all()
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
                    self.schedulers[strategy] = placing.scheduler(self.session, strategy)
                try:
                    result = self.schedulers[strategy].place(
                        placing.node_demands(spec), anti_affinity=anti_affinity
                    )
                except placing.NoFit as exc:
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
                placing.commit_placement(self.session, instance_id, spec, result)
            except placing.AllocationConflict as exc:
                log.info("placement of %s conflicted (%s); retrying", instance_id, exc)
                savepoint.rollback()
                self.schedulers.clear()
                continue
            hosts = sorted({p.host for p in result.nodes.values()})
            if not advance(
                self.session,
                instance_id,
                "schedule",
                states.QUEUED,
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
        placing.lock_placement(session)
        row = session.execute(
            select(Instance.status, Instance.queued_at).where(Instance.id == instance_id)
        ).first()
        if row is None or row.status != states.QUEUED:
            session.commit()
            return None
        placed = QueuePass(rt, session).run(until=(row.queued_at, instance_id))
        session.commit()
    for other in placed:
        if other != instance_id:
            publish_run(rt.celery, other)
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
        placing.lock_placement(session)
        placed = QueuePass(rt, session).run()
        session.commit()
    for instance_id in placed:
        publish_run(rt.celery, instance_id)
    return len(placed)


def instance_document(session: Session, instance: Instance) -> dict:
    """The placed instance as the orquestrator reads it from PAAS_INSTANCE_FILE."""
    nodes = session.scalars(select(Node).where(Node.instance_id == instance.id).order_by(Node.id))
    return {
        "id": instance.id,
        "name": instance.name,
        "service": instance.service_name,
        "version": instance.service_version,
        "user": instance.user.name,
        "options": instance.merged_options or {},
        "nodes": [n.placement or {"name": n.name, **n.spec} for n in nodes],
        "services": (instance.spec or {}).get("services", {}),
    }


class LogWriter:
    """Store orquestrator output lines in batches, so a chatty script costs few commits."""

    def __init__(self, rt: Runtime, instance_id: str, command: str) -> None:
        self.rt, self.instance_id, self.command = rt, instance_id, command
        self.buffer: list[LogLine] = []
        self.flushed_at = time.monotonic()

    def __call__(self, stream: str, line: str) -> None:
        self.buffer.append(
            LogLine(
                instance_id=self.instance_id, command=self.command, stream=stream, line=line[:8000]
            )
        )
        if len(self.buffer) >= 200 or time.monotonic() - self.flushed_at > 0.5:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            with self.rt.db.session() as session:
                session.add_all(self.buffer)
                session.commit()
            self.buffer = []
        self.flushed_at = time.monotonic()


def run_orquestrator(
    rt: Runtime, instance_id: str, command: str, *, keep_heartbeat: bool = False
) -> tuple[bool, str]:
    """Run the service's orquestrator ``command`` for the instance; (ok, how it ended).

    The heartbeat beats while the command runs and is cleared when it ends, unless
    ``keep_heartbeat``: the caller's step goes on, and clears it itself.
    """
    with rt.db.session() as session:
        instance = session.get(Instance, instance_id)
        service = session.get(Service, instance.service_id) if instance.service_id else None
        if service is None or not service.orquestrator:
            session.commit()
            return False, "the service has no orquestrator any more"
        script, document = service.orquestrator, instance_document(session, instance)
        timeout = service.orquestrator_timeout or rt.config.ORQUESTRATOR_TIMEOUT
        session.commit()
    writer = LogWriter(rt, instance_id, command)
    result = run_script(
        script,
        command,
        document,
        rt.config.work_path / instance_id,
        env={
            "PAAS_INSTANCE_ID": instance_id,
            "PAAS_SERVICE": document["service"],
            "PAAS_VERSION": document["version"],
            "PAAS_USER": document["user"],
            "PAAS_INSTANCE_NAME": document["name"],
        },
        limits=ScriptLimits(
            timeout=timeout,
            max_output=rt.config.ORQUESTRATOR_MAX_OUTPUT,
            max_memory=rt.config.ORQUESTRATOR_MAX_MEMORY_MB * 1024 * 1024,
            max_processes=rt.config.ORQUESTRATOR_MAX_PROCESSES,
        ),
        on_output=writer,
        on_tick=Heartbeat(rt, instance_id),
    )
    writer.flush()
    if not keep_heartbeat:
        clear_heartbeat(rt, instance_id)
    return result.ok, result.describe(command)


def clear_heartbeat(rt: Runtime, instance_id: str) -> None:
    """No command runs any more: a destroy may claim the instance at once."""
    with rt.db.session() as session:
        session.execute(
            update(Instance)
            .where(Instance.id == instance_id)
            .values(heartbeat_at=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()


class Heartbeat:
    """Refresh the instance's heartbeat every HEARTBEAT_INTERVAL while a command runs."""

    def __init__(self, rt: Runtime, instance_id: str) -> None:
        self.rt, self.instance_id = rt, instance_id
        self.beaten_at = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.beaten_at < self.rt.config.HEARTBEAT_INTERVAL:
            return
        self.beaten_at = time.monotonic()
        with self.rt.db.session() as session:
            session.execute(
                update(Instance)
                .where(Instance.id == self.instance_id)
                .values(heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            session.commit()


def run(rt: Runtime, instance_id: str, token: str | None = None) -> str:
    """Run the orquestrator's ``start``; exit 0 and answering ports make the instance running.

    The run is claimed with ``token`` (the Celery task id) first, so two run
    messages for one instance (the chain's and the queue drain's) never start
    the orquestrator twice. The message is acknowledged on receipt (a start may
    outlast the broker's ack timeout); while the script runs, a heartbeat in
    the database says it is alive, and the sweep takes over a run whose
    heartbeat stopped (see docs/orquestrators.md).
    """
    token = token or uuid.uuid4().hex
    with rt.db.session() as session:
        now = utcnow()
        claimed = session.execute(
            update(Instance)
            .where(
                Instance.id == instance_id,
                Instance.status == states.SCHEDULED,
                or_(Instance.run_token.is_(None), Instance.run_token == token),
            )
            .values(
                started_at=now,
                heartbeat_at=now,
                run_token=token,
                run_attempts=Instance.run_attempts + 1,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            session.commit()
            return "skipped"
        note(session, instance_id, "run", states.SCHEDULED, "orquestrator start began")
        session.commit()
    # The heartbeat lasts until the health check ends: a worker that dies while the check
    # waits loses the run as surely as one that dies during start.
    try:
        ok, how = run_orquestrator(rt, instance_id, "start", keep_heartbeat=True)
    except (OSError, RuntimeError) as exc:
        ok, how = False, f"could not start the orquestrator: {exc}"
    if ok:
        ok, health = check_health(rt, instance_id)
        how = f"{how}; {health}"
    if ok:
        with rt.db.session() as session:
            moved = advance(
                session,
                instance_id,
                "run",
                states.SCHEDULED,
                states.RUNNING,
                how,
                heartbeat_at=None,
            )
            session.commit()
        if moved:
            return states.RUNNING
    # start began: whatever it left behind is stopped before the instance fails
    stop_quietly(rt, instance_id, "run")
    if not ok and fail(rt, instance_id, "run", how):
        return states.FAILED
    # Destroyed while start ran: the destroy left the rest to this step.
    return finish_destroy(rt, instance_id)


def check_health(rt: Runtime, instance_id: str) -> tuple[bool, str]:
    """Wait for every node's check_ports to answer; (all answered, what happened)."""
    with rt.db.session() as session:
        nodes = [
            n.placement or {}
            for n in session.scalars(select(Node).where(Node.instance_id == instance_id))
        ]
        session.commit()
    targets = check_targets(nodes)
    if not targets:
        return True, "no check_ports to wait for"
    missing = wait_beating(rt, instance_id, targets)
    if missing:
        return False, describe_missing(missing, rt.config.HEALTH_TIMEOUT)
    return True, f"{len(targets)} check port(s) answered"


def wait_beating(rt: Runtime, instance_id: str, targets: list) -> list:
    """wait_for_ports for HEALTH_TIMEOUT, in slices between which the heartbeat beats."""
    beat = Heartbeat(rt, instance_id)
    deadline = time.monotonic() + rt.config.HEALTH_TIMEOUT
    while True:
        beat()
        left = max(0.0, deadline - time.monotonic())
        targets = wait_for_ports(targets, min(left, rt.config.HEARTBEAT_INTERVAL))
        if not targets or time.monotonic() >= deadline:
            return targets


def stop_quietly(rt: Runtime, instance_id: str, step: str) -> None:
    """Run the orquestrator's stop and record how it ended; never raise."""
    try:
        _ok, how = run_orquestrator(rt, instance_id, "stop")
    except (OSError, RuntimeError) as exc:
        how = f"could not run the orquestrator's stop: {exc}"
    with rt.db.session() as session:
        status = _status(session, instance_id) or states.FAILED
        note(session, instance_id, step, status, how)
        session.commit()


def destroy(rt: Runtime, instance_id: str) -> str:
    """Stop the cluster through the orquestrator and release every allocation.

    Claimed through the heartbeat: while a start or another destroy of the
    instance is alive, this one leaves the work to it.
    """
    with rt.db.session() as session:
        now = utcnow()
        stale = now - timedelta(seconds=rt.config.HEARTBEAT_TIMEOUT)
        claimed = session.execute(
            update(Instance)
            .where(
                Instance.id == instance_id,
                Instance.status == states.DESTROYING,
                or_(Instance.heartbeat_at.is_(None), Instance.heartbeat_at < stale),
            )
            .values(heartbeat_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        started = session.scalar(select(Instance.started_at).where(Instance.id == instance_id))
        session.commit()
    if not claimed:
        return "skipped"
    if started is not None:
        stop_quietly(rt, instance_id, "destroy")
    return finish_destroy(rt, instance_id)


def finish_destroy(rt: Runtime, instance_id: str) -> str:
    """Release every allocation of a destroying instance and mark it destroyed."""
    with rt.db.session() as session:
        freed = placing.release(session, instance_id)
        moved = advance(
            session,
            instance_id,
            "destroy",
            states.DESTROYING,
            states.DESTROYED,
            "every allocation released",
        )
        session.commit()
    if freed:
        kick_queue(rt.celery)
    return states.DESTROYED if moved else "skipped"


#: the step that moves an instance on from each in-flight status
NEXT_STEP = {
    states.PENDING: "prepare",
    states.PREPARED: "submit",
    states.SUBMITTED: "queue",
    states.SCHEDULED: "run",
}


def sweep(rt: Runtime) -> dict[str, int]:
    """Drive on every instance whose last change is older than its deadline.

    The broker is not the source of truth: a worker that died before publishing
    the next step, or a message lost with a broker, leaves an instance that
    only the database knows about. Re-publishing its next step is harmless
    because every step compare-and-sets. An orquestrator command whose
    heartbeat stopped (its worker died) is taken over: a start is run again
    (at most RUN_ATTEMPTS times, then the instance fails), a destroy is
    published again.
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
                Instance.status.in_((*NEXT_STEP, states.DESTROYING)), Instance.updated_at < stale
            )
            .order_by(Instance.updated_at)
            .limit(500)
        ).all()
        session.commit()
    for instance_id, status, started_at, heartbeat_at, attempts in rows:
        alive = heartbeat_at is not None and _aware(heartbeat_at) >= dead
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
        if status == states.DESTROYING and alive:
            continue
        step = "destroy" if status == states.DESTROYING else NEXT_STEP[status]
        if not _claim_stale(rt, instance_id, status, stale, step):
            continue  # moved on meanwhile, or another sweep of a backlog took it
        if step == "destroy":
            publish_destroy(rt.celery, instance_id)
        else:
            publish_chain(rt.celery, instance_id, LAUNCH_STEPS[LAUNCH_STEPS.index(step) :])
        counts["republished"] += 1
    kick_queue(rt.celery)
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
        claimed = session.execute(
            update(Instance)
            .where(
                Instance.id == instance_id,
                Instance.status == status,
                Instance.updated_at < stale,
            )
            .values(updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
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


def _aware(value):
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _release_run_claim(rt: Runtime, instance_id: str, dead) -> bool:
    """Let another run message claim a start whose heartbeat stopped."""
    with rt.db.session() as session:
        released = session.execute(
            update(Instance)
            .where(
                Instance.id == instance_id,
                Instance.status == states.SCHEDULED,
                # none: its worker died between the start's end and the step's
                or_(Instance.heartbeat_at.is_(None), Instance.heartbeat_at < dead),
            )
            .values(run_token=None)
            .execution_options(synchronize_session=False)
        ).rowcount
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
