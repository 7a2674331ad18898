"""Nodes on their hosts: the run step starts them through the agents, destroy stops them.

A node runs through its host's agent when its spec names an image (``docker_image``) or a
``command`` and its host has an agent (one that reported at least once). Other nodes are
bookkeeping, as in the original: the orquestrator alone deploys them. The agents answer by
publishing reports that a pipeline worker records on the node (lifecycle/agents.py); the
step waits for those records, beating its heartbeat.
"""

from __future__ import annotations

import time

from sqlalchemy import select

from bigdata_paas.errors import Unavailable
from bigdata_paas.messaging.publish import publish_to_agent
from bigdata_paas.models import Host, Network, Node, iso, utcnow
from bigdata_paas.operations.lifecycle.commands import Heartbeat
from bigdata_paas.runtime import Runtime

#: seconds between two looks at the nodes' records while waiting for the agents
POLL = 0.05


def runs_on_agent(spec: dict) -> bool:
    """Whether a node is something an agent runs (an image or a command)."""
    return bool(spec.get("docker_image") or spec.get("command"))


def _managed(session, instance_id: str) -> list[tuple[Node, Host]]:
    rows = session.execute(
        select(Node, Host)
        .join(Host, Host.id == Node.host_id)
        .where(Node.instance_id == instance_id, Host.agent_seen_at.is_not(None))
        .order_by(Node.id)
    ).all()
    return [(node, host) for node, host in rows if runs_on_agent(node.spec)]


def networks(session) -> dict[str, dict]:
    return {
        n.name: {"cidr": n.cidr, "gateway": n.gateway, "bridge": n.bridge}
        for n in session.scalars(select(Network))
    }


def claim_nodes(
    session, instance_id: str, only: set[str] | None = None
) -> list[tuple[str, dict, dict]]:
    """Mark the nodes (of ``only``, when given) an agent is to start ``starting`` (in the run
    step's claim); the orders for ``start_nodes``: (host, placed node, networks)."""
    rows = [(n, h) for n, h in _managed(session, instance_id) if only is None or n.name in only]
    nets = networks(session) if rows else {}
    orders = []
    for node, host in rows:
        if node.placement is None:
            raise RuntimeError(f"node {node.name} is on host {host.name} without a placement")
        node.runtime = {"state": "starting", "host": host.name, "at": iso(utcnow())}
        # an agent learns the platform networks its node is on, not the whole inventory's
        used = {nic.get("networkname") for nic in (node.placement.get("networks") or {}).values()}
        orders.append((host.name, node.placement, {n: nets[n] for n in sorted(used) if n in nets}))
    return orders


def start_nodes(rt: Runtime, instance_id: str, orders: list) -> tuple[bool, str]:
    """Start the claimed nodes on their hosts' agents, all at once, and wait until each
    runs; (all running, what happened). A node that fails names itself, its host and why."""
    if not orders:
        return True, "no node for an agent to start"
    try:
        for host, placed, nets in orders:
            publish_to_agent(
                rt.celery,
                rt.config.host_queue(host),
                "agent.start_node",
                instance_id,
                placed,
                nets,
                expires=rt.config.NODE_START_TIMEOUT,
            )
    except Unavailable:
        return False, "could not ask the agents to start the nodes: the broker is unreachable"
    names = {str(placed.get("name")) for _host, placed, _nets in orders}
    states = _wait(rt, instance_id, {"running", "failed"}, rt.config.NODE_START_TIMEOUT, names)
    failed = {name: r for name, r in states.items() if r.get("state") == "failed"}
    if failed:
        return False, "; ".join(
            f"node {name} on host {r.get('host')} did not start: {r.get('error')}"
            for name, r in sorted(failed.items())
        )
    late = {name: r for name, r in states.items() if r.get("state") != "running"}
    if late:
        return False, "; ".join(
            f"node {name} on host {r.get('host')} did not start within "
            f"{rt.config.NODE_START_TIMEOUT:g} s (is the host's agent running?)"
            for name, r in sorted(late.items())
        )
    hosts = sorted({r["host"] for r in states.values()})
    return True, f"{len(states)} node(s) running on {', '.join(hosts)}"


def stop_nodes(rt: Runtime, instance_id: str, only: set[str] | None = None) -> str:
    """Ask the agents to stop every node of the instance (of ``only``, when given) that one
    of them started, and wait (NODE_STOP_TIMEOUT at most, not for hosts that are down); what
    happened ("" when no agent ran any node of it).

    An agent that is down gets the order when it comes back (its queue is durable), and its
    reconcile removes what no live instance owns anyway.
    """
    with rt.db.session() as session:
        nodes = [
            n
            for n in session.scalars(select(Node).where(Node.instance_id == instance_id))
            if n.runtime
            and n.runtime.get("state") not in ("stopped", None)
            and (only is None or n.name in only)
        ]
        down = set(session.scalars(select(Host.name).where(Host.state == "down")))
        orders = []
        for node in nodes:
            runtime = node.runtime or {}
            host = runtime.get("host") or (node.placement or {}).get("host")
            if host is None:  # the run step's claim and every agent report record the host
                raise RuntimeError(f"node {node.name} names no host to stop it on")
            node.runtime = {**runtime, "state": "stopping", "at": iso(utcnow())}
            orders.append((host, node.placement or {"name": node.name}))
        session.commit()
    if not orders:
        return ""
    try:
        for host, placed in orders:
            publish_to_agent(
                rt.celery, rt.config.host_queue(host), "agent.stop_node", instance_id, placed
            )
    except Unavailable:
        return "could not ask the agents to stop the nodes (broker unreachable); they will"
    waited = {str(p.get("name")) for h, p in orders if h not in down}
    states = _wait(rt, instance_id, {"stopped", "failed"}, rt.config.NODE_STOP_TIMEOUT, waited)
    stopped = sorted(n for n, r in states.items() if r.get("state") == "stopped")
    left = sorted(n for n, r in states.items() if r.get("state") != "stopped")
    text = f"{len(stopped)} node(s) stopped"
    if left:
        text += f"; not confirmed: {', '.join(left)} (their agents remove them when they report)"
    return text


def _wait(
    rt: Runtime, instance_id: str, done: set[str], timeout: float, only: set[str] | None = None
) -> dict[str, dict]:
    """Poll the nodes' runtime records until each (of ``only``) is in a ``done`` state or
    ``timeout`` passes, beating the instance's heartbeat; {node: runtime record}."""
    beat = Heartbeat(rt, instance_id)
    deadline = time.monotonic() + timeout
    while True:
        beat()
        with rt.db.session() as session:
            records = {
                name: runtime
                for name, runtime in session.execute(
                    select(Node.name, Node.runtime).where(Node.instance_id == instance_id)
                )
                if runtime and (only is None or name in only)
            }
            session.commit()
        if all(r.get("state") in done for r in records.values()) or time.monotonic() > deadline:
            return records
        time.sleep(POLL)
