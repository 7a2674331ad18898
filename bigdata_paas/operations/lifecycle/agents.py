"""What the host agents report, recorded: node states, heartbeats, silent hosts, reconcile.

Agents hold no database URL: they publish reports that a pipeline worker records here. A
report is checked before it changes anything: an agent speaks for its own host only, and
only of nodes placed there. A host whose agent stays silent for HOST_DOWN_AFTER seconds goes
``down`` (nothing new lands there) and the running instances with a node there go
``degraded``; its next report brings the host back ``up`` (unless an admin set its state)
and the instances whose nodes all run again back to ``running``.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bigdata_paas import states
from bigdata_paas.messaging.publish import after_commit
from bigdata_paas.models import Host, Instance, Node, iso, utcnow
from bigdata_paas.operations.lifecycle.transitions import advance, note
from bigdata_paas.operations.wakeups import wake_queue
from bigdata_paas.runtime import Runtime

log = logging.getLogger(__name__)

#: node states an agent reports (``running``, ``failed`` starting or stopping, ``stopped``)
REPORTED = ("running", "failed", "stopped")
#: how a host that went down because its agent fell silent says so (and knows to come back)
SILENT = "its agent has not reported since "
#: fields of an agent's report about itself that are kept on the host
AGENT_FIELDS = ("driver", "machine", "pid", "started_at")
#: when this process (a pipeline worker; forked pool children inherit it) began to receive
#: the agents' reports
LISTENING_SINCE = time.monotonic()


def _text(value: Any, limit: int = 2000) -> str:
    return str(value)[:limit]


def record_node(
    rt: Runtime, host: str, instance_id: str, name: str, state: str, detail: dict
) -> str:
    """Record what ``host``'s agent says of one node; what was done."""
    if state not in REPORTED or not isinstance(detail, dict):
        return "ignored"
    with rt.db.session() as session:
        row = session.execute(
            select(Node, Instance.status)
            .join(Instance, Instance.id == Node.instance_id)
            .where(Node.instance_id == instance_id, Node.name == name)
        ).first()
        if row is None or (row[0].placement or {}).get("host") != host:
            if state == "running":
                # a node nobody placed there runs there: nothing owns it
                log.info(
                    "host %s runs %s/%s, which no live instance owns: stopping it",
                    host,
                    instance_id,
                    name,
                )
                stop_on(rt, session, host, instance_id, {"name": name})
            else:
                log.warning(
                    "ignored a report of %s on %s for %s/%s", host, state, instance_id, name
                )
            session.commit()
            return "ignored"
        node, status = row
        record: dict[str, Any] = {
            "state": state,
            "host": host,
            "at": iso(utcnow()),
            **{k: _text(v) for k, v in detail.items() if k in ("driver", "runtime_id", "name")},
        }
        if isinstance(detail.get("addresses"), dict):
            record["addresses"] = {
                _text(k, 64): _text(v, 64) for k, v in detail["addresses"].items()
            }
        if state == "failed":
            record["error"] = _text(detail.get("error", "no reason given"))
        node.runtime = record
        if state == "running" and status not in states.LIVE:
            # started after its instance was destroyed or failed: nothing owns it
            stop_on(rt, session, host, instance_id, node.placement or {"name": node.name})
        session.commit()
    return state


def stop_on(rt: Runtime, session: Session, host: str, instance_id: str, placed: dict) -> None:
    """Order ``host``'s agent to stop a node once this transaction commits."""
    after_commit(session, "agent.stop_node", instance_id, placed, queue=rt.config.host_queue(host))


def record_report(rt: Runtime, host_name: str, report: dict) -> str:
    """Record a heartbeat of ``host_name``'s agent and reconcile the nodes it runs."""
    if not isinstance(report, dict):
        return "ignored"
    now = utcnow()
    with rt.db.session() as session:
        host = session.scalar(select(Host).where(Host.name == host_name))
        if host is None:
            log.info("ignored a report of %s: no such host in the inventory", host_name)
            session.commit()
            return "ignored"
        host.agent_seen_at = now
        host.agent = {k: _text(report[k], 200) for k in AGENT_FIELDS if k in report}
        if host.state == "down" and (host.state_reason or "").startswith(SILENT):
            host.state, host.state_reason, host.state_since = "up", None, now
            wake_queue(session)
        nodes = report.get("nodes")
        if isinstance(nodes, list):
            reconcile(rt, session, host, nodes)
        session.commit()
    return "recorded"


def reconcile(rt: Runtime, session: Session, host: Host, reported: list) -> None:
    """Compare what runs on ``host`` with what should: stop what no live instance owns, and
    mark degraded the instances whose nodes that should run here do not (or running again
    those whose nodes all run)."""
    running: set[tuple[str, str]] = set()
    seen: set[tuple[str, str]] = set()
    for item in reported:
        if isinstance(item, dict) and isinstance(item.get("instance"), str):
            key = (item["instance"], str(item.get("node")))
            seen.add(key)
            if item.get("state") == "running":
                running.add(key)
    placed = {
        (node.instance_id, node.name): (node, status)
        for node, status in session.execute(
            select(Node, Instance.status)
            .join(Instance, Instance.id == Node.instance_id)
            .where(Node.host_id == host.id)
        )
    }
    for instance_id, name in sorted(
        seen - {k for k, (_n, s) in placed.items() if s in states.LIVE}
    ):
        log.info(
            "host %s runs %s/%s, which no live instance owns: stopping it",
            host.name,
            instance_id,
            name,
        )
        stop_on(rt, session, host.name, instance_id, {"name": name})
    for (instance_id, name), (node, status) in placed.items():
        if status in states.UP and (node.runtime or {}).get("state") == "running":
            if (instance_id, name) not in running:
                node.runtime = {**(node.runtime or {}), "state": "missing", "at": iso(utcnow())}
                degrade(session, instance_id, f"node {name} is not running on host {host.name}")
        elif (
            status == states.DEGRADED
            and (node.runtime or {}).get("state") == "missing"
            and (instance_id, name) in running
        ):
            node.runtime = {**(node.runtime or {}), "state": "running", "at": iso(utcnow())}
    for instance_id in {i for (i, _n), (_node, s) in placed.items() if s == states.DEGRADED}:
        recover(session, instance_id)


def degrade(session: Session, instance_id: str, why: str) -> None:
    """A running instance lost a node or a host: degraded, with the reason as an event."""
    if not advance(session, instance_id, "health", states.DEGRADED, why):
        note(session, instance_id, "health", states.DEGRADED, why)


def recover(session: Session, instance_id: str) -> bool:
    """A degraded instance whose hosts are all up and whose agent-run nodes all run again
    runs again."""
    rows = session.execute(
        select(Node.name, Node.runtime, Host.name, Host.state, Host.agent_seen_at)
        .join(Host, Host.id == Node.host_id)
        .where(Node.instance_id == instance_id)
    ).all()
    problems = [
        f"host {host} is {state}" if state == "down" else f"node {name} is not running"
        for name, runtime, host, state, seen in rows
        if state == "down" or (seen is not None and runtime and runtime.get("state") != "running")
    ]
    if problems:
        return False
    return advance(session, instance_id, "health", states.RUNNING, "every node runs again")


def check_hosts(rt: Runtime) -> list[str]:
    """Hosts whose agent has been silent for HOST_DOWN_AFTER go down; their running instances
    go degraded. Returns the hosts marked down now.

    Silence counts only while this process has been listening: when the whole platform was
    stopped (agents, workers and beat together, ``make run`` interrupted), the agents' last
    reports are old but nobody was there to hear them, so a platform that starts again gives
    them HOST_DOWN_AFTER to report before any host goes down (and no instance is degraded
    for the platform's own absence).
    """
    now = utcnow()
    listening = time.monotonic() - LISTENING_SINCE
    if listening < rt.config.HOST_DOWN_AFTER:
        return []
    silent_since = now - timedelta(seconds=rt.config.HOST_DOWN_AFTER)
    marked = []
    with rt.db.session() as session:
        hosts = session.scalars(
            select(Host).where(
                Host.state == "up",
                Host.agent_seen_at.is_not(None),
                Host.agent_seen_at < silent_since,
            )
        ).all()
        for host in hosts:
            host.state = "down"
            host.state_reason = SILENT + _when(host.agent_seen_at)
            host.state_since = now
            marked.append(host.name)
            affected = session.scalars(
                select(Instance.id)
                .join(Node, Node.instance_id == Instance.id)
                .where(Node.host_id == host.id, Instance.status.in_(states.UP))
                .distinct()
            ).all()
            for instance_id in affected:
                degrade(session, instance_id, f"host {host.name} is down: {host.state_reason}")
        session.commit()
    for name in marked:
        log.warning(
            "host %s is down: its agent has been silent for %g s", name, rt.config.HOST_DOWN_AFTER
        )
    return marked


def _when(value: datetime | None) -> str:
    return iso(value) or "never"
