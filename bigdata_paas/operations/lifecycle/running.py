"""The run and destroy steps: start the cluster, check its ports, stop it, release it."""

from __future__ import annotations

import time
import uuid
from typing import cast

from sqlalchemy import Table, bindparam, or_, select, update

from bigdata_paas import states
from bigdata_paas.db import changed_rows
from bigdata_paas.models import Instance, Node, utcnow
from bigdata_paas.operations import allocations
from bigdata_paas.operations.lifecycle.commands import Heartbeat, command_job, run_orquestrator
from bigdata_paas.operations.lifecycle.nodes import claim_nodes, start_nodes, stop_nodes
from bigdata_paas.operations.lifecycle.transitions import advance, claim_work, fail, note, status_of
from bigdata_paas.orquestrator.health import check_targets, describe_missing, wait_for_ports
from bigdata_paas.runtime import Runtime


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
        claim = {"instance_id": instance_id, "token": token, "now": now}
        claimed = changed_rows(session, _CLAIM_RUN, claim)
        if not claimed:
            session.commit()
            return "skipped"
        orders = claim_nodes(session, instance_id)
        # With no node for the agents to start, the start's document is as it is now.
        job = None if orders else command_job(rt, session, instance_id)
        began = "orquestrator start began"
        if orders:
            hosts = ", ".join(sorted({host for host, _placed, _nets in orders}))
            began = f"starting {len(orders)} node(s) on the agents of {hosts}"
        note(session, instance_id, "run", states.SCHEDULED, began)
        session.commit()
    # The heartbeat lasts until the health check ends: a worker that dies while the nodes
    # start or the check waits loses the run as surely as one that dies during start.
    ok, how = True, ""
    if orders:
        ok, how = start_nodes(rt, instance_id, orders)
        if ok:
            with rt.db.session() as session:
                note(
                    session,
                    instance_id,
                    "run",
                    states.SCHEDULED,
                    f"{how}; orquestrator start began",
                )
                session.commit()
    if ok:
        try:
            ok, started = run_orquestrator(rt, instance_id, "start", keep_heartbeat=True, job=job)
        except (OSError, RuntimeError) as exc:
            ok, started = False, f"could not start the orquestrator: {exc}"
        how = f"{how}; {started}" if how else started
    if ok:
        ok, health = check_health(rt, instance_id, job.document["nodes"] if job else None)
        how = f"{how}; {health}"
    ours = (Instance.run_token == token,)
    if ok:
        with rt.db.session() as session:
            moved = advance(
                session, instance_id, "run", states.RUNNING, how, heartbeat_at=None, where=ours
            )
            session.commit()
        if moved:
            return states.RUNNING
    with rt.db.session() as session:
        status, holder = session.execute(
            select(Instance.status, Instance.run_token).where(Instance.id == instance_id)
        ).one()
        session.commit()
    mine = status == states.SCHEDULED and holder == token
    if not mine and status != states.DESTROYING:
        # Another attempt claimed the run (this one's heartbeat was taken for lost) or it
        # moved on: what runs now is not this attempt's to stop or release.
        return "skipped"
    # start began: whatever it left behind is stopped before the instance fails
    stop_quietly(rt, instance_id, "run")
    stopped = stop_nodes(rt, instance_id)
    reason = f"{how} ({stopped})" if stopped else how
    if mine and fail(rt, instance_id, "run", reason, where=ours):
        return states.FAILED
    # Destroyed while start ran: the destroy left the rest to this step.
    return finish_destroy(rt, instance_id)


_INSTANCES = cast(Table, Instance.__table__)
#: the run's claim: this attempt's token on a scheduled instance no other attempt holds
_CLAIM_RUN = (
    update(_INSTANCES)
    .where(
        _INSTANCES.c.id == bindparam("instance_id"),
        _INSTANCES.c.status == states.STEPS["run"].source,
        or_(_INSTANCES.c.run_token.is_(None), _INSTANCES.c.run_token == bindparam("token")),
    )
    .values(
        started_at=bindparam("now"),
        heartbeat_at=bindparam("now"),
        run_token=bindparam("token"),
        run_attempts=_INSTANCES.c.run_attempts + 1,
    )
)


def check_health(rt: Runtime, instance_id: str, nodes: list | None = None) -> tuple[bool, str]:
    """Wait for every node's check_ports to answer (of ``nodes``, placed nodes as already
    read, or as stored); (all answered, what happened)."""
    if nodes is None:
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
        status = status_of(session, instance_id) or states.FAILED
        note(session, instance_id, step, status, how)
        session.commit()


def destroy(rt: Runtime, instance_id: str) -> str:
    """Stop the cluster through the orquestrator and release every allocation.

    Claimed through the heartbeat: while a start or another destroy of the
    instance is alive, this one leaves the work to it.
    """
    with rt.db.session() as session:
        claimed = claim_work(session, instance_id, states.DESTROYING, rt.config.HEARTBEAT_TIMEOUT)
        started = session.scalar(select(Instance.started_at).where(Instance.id == instance_id))
        session.commit()
    if not claimed:
        return "skipped"
    if started is not None:
        stop_quietly(rt, instance_id, "destroy")
        stopped = stop_nodes(rt, instance_id)
        if stopped:
            with rt.db.session() as session:
                note(session, instance_id, "destroy", states.DESTROYING, stopped)
                session.commit()
    return finish_destroy(rt, instance_id)


def finish_destroy(rt: Runtime, instance_id: str) -> str:
    """Release every allocation of a destroying instance and mark it destroyed; an instance
    that is not destroying keeps what it holds."""
    with rt.db.session() as session:
        allocations.lock_placement(session)  # first, as placements do: releases take it too
        moved = advance(
            session, instance_id, "destroy", states.DESTROYED, "every allocation released"
        )
        if moved:
            allocations.release(session, instance_id)
        session.commit()
    return states.DESTROYED if moved else "skipped"
