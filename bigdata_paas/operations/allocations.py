"""Load the inventory, call the pure placement engine, and commit its answer atomically."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from bigdata_paas.db import changed_rows
from bigdata_paas.models import HOST_STATES, Address, Host, HostDisk, Network, Node
from bigdata_paas.operations.inventory import expand_reserved, lock_placement
from bigdata_paas.operations.wakeups import wake_queue
from bigdata_paas.placement import (
    DiskDemand,
    FreeDisk,
    HostView,
    NetworkView,
    NicDemand,
    NodeDemand,
    NoFit,
    Placement,
    Scheduler,
    feasible,
    place,
)
from bigdata_paas.rendering import node_roles


class AllocationConflict(Exception):
    """Another scheduler took a resource between our read and our write."""


def node_demands(spec: dict) -> list[NodeDemand]:
    """Turn a validated spec's nodes into engine demands."""
    roles = node_roles(spec)
    demands = []
    for name, node in spec["nodes"].items():
        custom = bool(node.get("use_custom_disks"))
        demands.append(
            NodeDemand(
                name=name,
                cpu=node["cpu"],
                mem=node["mem"],
                disks=tuple(
                    DiskDemand(name=d, type=body.get("type"), host_disk=d if custom else None)
                    for d, body in node.get("disks", {}).items()
                ),
                nics=tuple(
                    NicDemand(
                        device=dev,
                        network=nic["networkname"],
                        address=nic.get("address") if nic.get("type") == "static" else None,
                    )
                    for dev, nic in node.get("networks", {}).items()
                ),
                roles=frozenset(roles.get(name, ())),
                pin=node.get("required_node"),
                constraints=tuple(sorted((node.get("constraints") or {}).items())),
            )
        )
    return demands


def load_hosts(session: Session, *, empty: bool = False) -> list[HostView]:
    """The inventory as the engine sees it (``empty``: as if nothing were allocated)."""
    # populate_existing: a queue drain reads the inventory again after its own bulk UPDATEs,
    # which leave hosts and disks already in the session stale.
    hosts = session.scalars(
        select(Host)
        .options(selectinload(Host.disks))
        .order_by(Host.id)
        .execution_options(populate_existing=True)
    )
    return [
        HostView(
            id=h.id,
            name=h.name,
            cpu_total=h.cpu,
            mem_total=h.mem,
            cpu_free=h.cpu if empty else h.cpu - h.cpu_used,
            mem_free=h.mem if empty else h.mem - h.mem_used,
            disks=[
                FreeDisk(id=d.id, name=d.name, type=d.type, size=d.size)
                for d in h.disks
                if empty or d.node_id is None
            ],
            networks=frozenset(h.networks),
            labels=dict(h.labels),
            state=h.state,
            disk_total=len(h.disks),
        )
        for h in hosts
    ]


def load_networks(session: Session, *, empty: bool = False) -> dict[str, NetworkView]:
    networks = {}
    for net in session.scalars(select(Network)):
        used = (
            frozenset()
            if empty
            else frozenset(
                session.scalars(select(Address.address).where(Address.network_id == net.id))
            )
        )
        networks[net.name] = NetworkView(
            name=net.name,
            cidr=net.cidr,
            gateway=net.gateway,
            bridge=net.bridge,
            used=used,
            reserved=frozenset(expand_reserved(net)),
        )
    return networks


def check_feasible(session: Session, spec: dict) -> tuple[list[str], int]:
    """Why the instance could never fit the inventory, empty and every host up ([] if it
    could), and the number of hosts it was checked against.

    Drained and down hosts count: they may come back, and the instance then waits queued.
    """
    hosts = load_hosts(session, empty=True)
    shortages = feasible(
        node_demands(spec),
        hosts,
        load_networks(session, empty=True),
        anti_affinity=spec.get("anti_affinity", "soft"),
        states=HOST_STATES,
    )
    return [s.message for s in shortages], len(hosts)


def compute(session: Session, spec: dict, strategy: str) -> Placement:
    """Place the spec's nodes on the current free capacity; raises NoFit."""
    return place(
        node_demands(spec),
        load_hosts(session),
        load_networks(session),
        strategy=strategy,
        anti_affinity=spec.get("anti_affinity", "soft"),
    )


def scheduler(session: Session, strategy: str) -> Scheduler:
    """A scheduler over the free capacity as committed now: it places instance after instance,
    each on what the ones before it left, without reading the inventory again."""
    return Scheduler(load_hosts(session), load_networks(session), strategy=strategy)


def placed_node(spec_node: dict, name: str, placement, host: Host) -> dict:
    """The node as the orquestrator receives it: spec fields plus host, disks, addresses."""
    node = {k: v for k, v in spec_node.items() if k not in ("disks", "networks")}
    disks = []
    for disk_name, body in spec_node.get("disks", {}).items():
        hd = placement.disks[disk_name]
        disks.append(
            {
                **body,
                "name": disk_name,
                "host_disk": hd.name,
                "type": hd.type,
                "size": hd.size,
                "origin": f"/data/{hd.name}",
            }
        )
    networks = {}
    for dev, body in spec_node.get("networks", {}).items():
        a = placement.nics[dev]
        networks[dev] = {
            **body,
            "address": a.address,
            "netmask": a.netmask,
            "prefixlen": a.prefixlen,
            "gateway": a.gateway,
            "bridge": a.bridge,
        }
    first = next(iter(networks.values()), None)
    node.update(
        name=name,
        host=host.name,
        host_address=host.address,
        address=first["address"] if first else host.address,
        disks=disks,
        networks=networks,
    )
    return node


def commit_placement(session: Session, instance_id: str, spec: dict, placement: Placement) -> None:
    """Write every allocation of ``placement``; all guarded so a double allocation fails."""
    nodes = {
        n.name: n for n in session.scalars(select(Node).where(Node.instance_id == instance_id))
    }
    hosts = {
        h.id: h
        for h in session.scalars(
            select(Host).where(Host.id.in_({p.host_id for p in placement.nodes.values()}))
        )
    }
    net_ids = dict(session.execute(select(Network.name, Network.id)).all())
    for name, p in placement.nodes.items():
        node = nodes[name]
        took = changed_rows(
            session,
            update(Host)
            .where(
                Host.id == p.host_id,
                Host.state == "up",
                Host.cpu_used + node.cpu <= Host.cpu,
                Host.mem_used + node.mem <= Host.mem,
            )
            .values(cpu_used=Host.cpu_used + node.cpu, mem_used=Host.mem_used + node.mem)
            .execution_options(synchronize_session=False),
        )
        if took != 1:
            raise AllocationConflict(f"cpu/mem on {p.host} changed")
        for disk in p.disks.values():
            took = changed_rows(
                session,
                update(HostDisk)
                .where(HostDisk.id == disk.id, HostDisk.node_id.is_(None))
                .values(node_id=node.id)
                .execution_options(synchronize_session=False),
            )
            if took != 1:
                raise AllocationConflict(f"disk {disk.name} on {p.host} was taken")
        for dev, a in p.nics.items():
            session.add(
                Address(
                    network_id=net_ids[a.network],
                    node_id=node.id,
                    device=dev,
                    address=str(ipaddress.ip_address(a.address)),
                )
            )
        node.host_id = p.host_id
        node.placement = placed_node(spec["nodes"][name], name, p, hosts[p.host_id])
    try:
        session.flush()
    except IntegrityError as exc:
        raise AllocationConflict("an address was taken") from exc


def release(session: Session, instance_id: str, names: Collection[str] | None = None) -> bool:
    """Free every allocation the instance's nodes (those ``names``, when given: nodes that
    leave a resized instance) hold; True if anything was freed.

    Freed capacity wakes the queue once this transaction commits.
    """
    # Under the placement lock, so a queue drain never sees capacity appear mid-pass.
    lock_placement(session)
    which: tuple[ColumnElement[bool], ...] = (Node.instance_id == instance_id,)
    if names is not None:
        which = (*which, Node.name.in_(list(names)))
    nodes = list(session.scalars(select(Node).where(*which, Node.host_id.is_not(None))))
    for node in nodes:
        session.execute(
            update(Host)
            .where(Host.id == node.host_id)
            .values(cpu_used=Host.cpu_used - node.cpu, mem_used=Host.mem_used - node.mem)
            .execution_options(synchronize_session=False)
        )
        node.host_id = None
    ids = list(session.scalars(select(Node.id).where(*which)))
    if ids:
        freed_disks = changed_rows(
            session,
            update(HostDisk)
            .where(HostDisk.node_id.in_(ids))
            .values(node_id=None)
            .execution_options(synchronize_session=False),
        )
        freed_addresses = changed_rows(
            session,
            delete(Address)
            .where(Address.node_id.in_(ids))
            .execution_options(synchronize_session=False),
        )
    else:
        freed_disks = freed_addresses = 0
    freed = bool(nodes or freed_disks or freed_addresses)
    if freed:
        wake_queue(session)
    return freed


__all__ = [
    "AllocationConflict",
    "NoFit",
    "check_feasible",
    "commit_placement",
    "compute",
    "lock_placement",
    "release",
    "scheduler",
]
