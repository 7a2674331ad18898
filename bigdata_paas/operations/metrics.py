"""What ``/metrics`` reports, read from the database at the moment of the scrape.

The database is the truth of every status, allocation and heartbeat, and it is shared by every
web, worker and agent process: counters kept in one process's memory would each see a part.
So one read here gives plain figures, and api/metrics.py only names them for Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bigdata_paas import states
from bigdata_paas.models import Event, Host, HostDisk, Instance, Network, utcnow
from bigdata_paas.operations.inventory import network_usage
from bigdata_paas.runtime import Runtime

#: the memory of hosts and nodes is in MiB; Prometheus wants bytes
MIB = 1024 * 1024


@dataclass
class HostFigures:
    name: str
    state: str
    cpu: int
    cpu_allocated: int
    mem_bytes: int
    mem_allocated_bytes: int
    disks: int
    disks_allocated: int
    #: seconds since its agent last reported; None while no agent ever did
    agent_age: float | None


@dataclass
class Figures:
    #: (service, version, status) -> instances
    instances: dict[tuple[str, str, str], int] = field(default_factory=dict)
    queued: int = 0
    #: seconds the longest-waiting queued instance has waited (0 when none waits)
    oldest_queued_wait: float = 0.0
    hosts: list[HostFigures] = field(default_factory=list)
    #: network -> (addresses it may hand out, addresses held)
    addresses: dict[str, tuple[int, int]] = field(default_factory=dict)
    launches: int = 0
    #: launch step -> failures at that step, every launch step present
    failures: dict[str, int] = field(default_factory=dict)
    #: seconds from each launch to its first running
    launch_to_running: list[float] = field(default_factory=list)


def read(rt: Runtime, now: datetime | None = None) -> Figures:
    """Every figure of ``/metrics`` in one database session (read only)."""
    now = now or utcnow()
    with rt.db.session() as session:
        figures = Figures(
            instances=_instances(session),
            hosts=_hosts(session, now),
            addresses={n.name: _addresses(session, n) for n in session.scalars(select(Network))},
            launches=session.scalar(select(func.count(Instance.id))) or 0,
            failures=_failures(session),
            launch_to_running=_launch_to_running(session),
        )
        queued, oldest = session.execute(
            select(func.count(Instance.id), func.min(Instance.queued_at)).where(
                Instance.status == states.QUEUED
            )
        ).one()
        session.rollback()
    figures.queued = queued
    figures.oldest_queued_wait = max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
    return figures


def _instances(session: Session) -> dict[tuple[str, str, str], int]:
    rows = session.execute(
        select(
            Instance.service_name, Instance.service_version, Instance.status, func.count()
        ).group_by(Instance.service_name, Instance.service_version, Instance.status)
    )
    counts = {(name, version, status): n for name, version, status, n in rows}
    # every status of every service that has instances: a status emptied reads 0, not absent
    for name, version in {(n, v) for n, v, _s in counts}:
        for status in states.STATUSES:
            counts.setdefault((name, version, status), 0)
    return counts


def _hosts(session: Session, now: datetime) -> list[HostFigures]:
    disks = dict(
        session.execute(select(HostDisk.host_id, func.count()).group_by(HostDisk.host_id)).all()
    )
    held = dict(
        session.execute(
            select(HostDisk.host_id, func.count())
            .where(HostDisk.node_id.is_not(None))
            .group_by(HostDisk.host_id)
        ).all()
    )
    return [
        HostFigures(
            name=host.name,
            state=host.state,
            cpu=host.cpu,
            cpu_allocated=host.cpu_used,
            mem_bytes=host.mem * MIB,
            mem_allocated_bytes=host.mem_used * MIB,
            disks=disks.get(host.id, 0),
            disks_allocated=held.get(host.id, 0),
            agent_age=(
                max((now - host.agent_seen_at).total_seconds(), 0.0)
                if host.agent_seen_at is not None
                else None
            ),
        )
        for host in session.scalars(select(Host).order_by(Host.name))
    ]


def _addresses(session: Session, network: Network) -> tuple[int, int]:
    usage = network_usage(session, network)
    return usage["used"] + usage["free"], usage["used"]


def _failures(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Event.step, func.count())
        .where(Event.status == states.FAILED, Event.step.in_(states.LAUNCH_STEPS))
        .group_by(Event.step)
    )
    return {step: 0 for step in states.LAUNCH_STEPS} | dict(rows.all())


def _launch_to_running(session: Session) -> list[float]:
    first_running = (
        select(Event.instance_id, func.min(Event.at).label("at"))
        .where(Event.status == states.RUNNING, Event.step == "run")
        .group_by(Event.instance_id)
        .subquery()
    )
    rows = session.execute(
        select(Instance.created_at, first_running.c.at).join(
            first_running, first_running.c.instance_id == Instance.id
        )
    )
    return [max((at - created).total_seconds(), 0.0) for created, at in rows]
