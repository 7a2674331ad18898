"""The inventory: hosts with their disks, and address pools (networks)."""

from __future__ import annotations

import ipaddress

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, selectinload

from bigdata_paas.errors import Conflict, NotFound, ValidationError
from bigdata_paas.messaging.publish import after_commit
from bigdata_paas.models import Address, Host, HostDisk, Network, Node, utcnow
from bigdata_paas.operations import audit
from bigdata_paas.operations.wakeups import wake_queue
from bigdata_paas.runtime import Runtime

#: the PostgreSQL advisory lock that placements and inventory changes take ("PAAS")
PLACEMENT_LOCK = 0x5041_4153


def lock_placement(session: Session) -> None:
    """Serialize placements, releases and the inventory changes they must not race with.

    SQLite already serializes every write transaction (BEGIN IMMEDIATE). On PostgreSQL a
    transaction-scoped advisory lock does: taken before reading what it will change, so a
    host drained or deleted mid-placement is seen either before or after, never half-way.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PLACEMENT_LOCK})


def add_host(rt: Runtime, host: dict, *, actor: str) -> dict:
    """Add a host (a document checked by the caller: the API's and the CLI's ``HostIn``);
    queued instances are tried again."""
    with rt.db.session() as session:
        if session.scalar(select(Host.id).where(Host.name == host["name"])) is not None:
            raise Conflict(f"host {host['name']} already exists")
        unknown = set(host["networks"]) - set(
            session.scalars(select(Network.name).where(Network.name.in_(host["networks"])))
        )
        if unknown:
            raise ValidationError(
                f"unknown networks: {', '.join(sorted(unknown))}", field="networks"
            )
        row = Host(
            name=host["name"],
            address=host["address"],
            cpu=host["cpu"],
            mem=host["mem"],
            networks=host["networks"],
            labels=host["labels"],
            state=host["state"],
            disks=[HostDisk(name=d["name"], type=d["type"], size=d["size"]) for d in host["disks"]],
        )
        session.add(row)
        audit.record(session, actor, "host.added", f"host:{row.name}", cpu=row.cpu, mem=row.mem)
        wake_queue(session)
        # An agent that already runs on the new host reported to no host until now: ask it
        # to report at once, so the host is managed before the first node is placed there.
        after_commit(session, "pipeline.greet_agent", host["name"])
        session.commit()
        return row.to_dict()


def list_hosts(rt: Runtime) -> list[dict]:
    """Every host with its capacity, allocated and free resources."""
    with rt.db.session() as session:
        hosts = session.scalars(select(Host).options(selectinload(Host.disks)).order_by(Host.name))
        return [host.to_dict() for host in hosts]


def get_host(session: Session, name: str) -> Host:
    host = session.scalar(select(Host).where(Host.name == name))
    if host is None:
        raise NotFound(f"host {name} not found")
    return host


def describe_host(rt: Runtime, name: str) -> dict:
    """A host: capacity, allocated, free, and the instance nodes placed on it."""
    with rt.db.session() as session:
        host = get_host(session, name)
        return {**host.to_dict(), "nodes": host_nodes(session, host)}


def host_nodes(session: Session, host: Host) -> list[dict]:
    """The instance nodes placed on ``host``."""
    nodes = session.scalars(select(Node).where(Node.host_id == host.id).order_by(Node.id))
    return [{"instance": n.instance_id, "node": n.name, "cpu": n.cpu, "mem": n.mem} for n in nodes]


def update_host(rt: Runtime, name: str, changes: dict, *, actor: str) -> dict:
    """Change a host's ``state`` or ``labels`` (checked by the caller: ``HostPatch``); wake
    the queue when capacity may have appeared."""
    with rt.db.session() as session:
        host = get_host(session, name)
        lock_placement(session)  # no placement lands on a host as it is drained or relabelled
        session.refresh(host)
        opened = (changes.get("state") == "up" and host.state != "up") or "labels" in changes
        if "state" in changes and changes["state"] != host.state:
            host.state = changes["state"]
            # an admin's state: an agent that reports again does not undo it (only "up" does)
            host.state_reason = None if host.state == "up" else f"set to {host.state} by an admin"
            host.state_since = utcnow()
        host.labels = changes.get("labels", host.labels)
        audit.record(session, actor, "host.changed", f"host:{name}", changes=changes)
        if opened:
            wake_queue(session)
        session.commit()
        return host.to_dict()


def delete_host(rt: Runtime, name: str, *, actor: str) -> None:
    """Remove a host; refused while any node holds resources on it."""
    with rt.db.session() as session:
        host = get_host(session, name)
        lock_placement(session)  # a placement in flight commits its nodes first, or sees no host
        held = session.scalar(select(func.count()).select_from(Node).where(Node.host_id == host.id))
        if held:
            raise Conflict(
                f"host {host.name} holds {held} node(s); drain it and destroy them first"
            )
        session.delete(host)
        audit.record(session, actor, "host.deleted", f"host:{name}")
        wake_queue(session)  # instances that waited for it learn why they wait now
        session.commit()


def add_network(rt: Runtime, network: dict, *, actor: str) -> dict:
    """Add an address pool (checked by the caller: ``NetworkIn``); queued instances that
    wait for addresses are tried again."""
    with rt.db.session() as session:
        if session.scalar(select(Network.id).where(Network.name == network["name"])) is not None:
            raise Conflict(f"network {network['name']} already exists")
        row = Network(
            name=network["name"],
            cidr=network["cidr"],
            gateway=network["gateway"],
            bridge=network["bridge"],
            reserved=network["reserved"],
        )
        session.add(row)
        audit.record(session, actor, "network.added", f"network:{row.name}", cidr=row.cidr)
        wake_queue(session)
        session.commit()
        return network_usage(session, row)


def list_networks(rt: Runtime) -> list[dict]:
    """Every address pool with its usage."""
    with rt.db.session() as session:
        networks = session.scalars(select(Network).order_by(Network.name))
        return [network_usage(session, network) for network in networks]


def get_network(session: Session, name: str) -> Network:
    network = session.scalar(select(Network).where(Network.name == name))
    if network is None:
        raise NotFound(f"network {name} not found")
    return network


def describe_network(rt: Runtime, name: str) -> dict:
    """A pool: size, used, free, and who holds each used address."""
    with rt.db.session() as session:
        return network_usage(session, get_network(session, name))


def network_usage(session: Session, network: Network) -> dict:
    """Size, used, free, and who holds each used address."""
    cidr = ipaddress.ip_network(network.cidr)
    # The addresses placement may hand out (placement/addresses.py Pool): never the network
    # address, nor an IPv4 broadcast; reserved addresses outside them are not subtracted twice.
    low, high = int(cidr.network_address), int(cidr.broadcast_address)
    if cidr.num_addresses > 2:
        low += 1
        if cidr.version == 4:
            high -= 1
    usable = high - low + 1
    reserved = expand_reserved(network)
    if network.gateway:
        reserved.add(network.gateway)
    reserved = {a for a in reserved if low <= int(ipaddress.ip_address(a)) <= high}
    rows = session.execute(
        select(Address.address, Address.device, Node.name, Node.instance_id)
        .join(Node, Node.id == Address.node_id)
        .where(Address.network_id == network.id)
        .order_by(Address.id)
    )
    used = [{"address": a, "device": d, "node": n, "instance": i} for a, d, n, i in rows]
    return {
        "name": network.name,
        "cidr": network.cidr,
        "gateway": network.gateway,
        "bridge": network.bridge,
        "reserved": list(network.reserved),
        "size": usable,
        "used": len(used),
        "free": max(usable - len(reserved) - len(used), 0),
        "holders": used,
    }


def expand_reserved(network: Network) -> set[str]:
    out: set[str] = set()
    for item in network.reserved:
        first, _, last = item.partition("-")
        low = ipaddress.ip_address(first.strip())
        high = ipaddress.ip_address((last or first).strip())
        if int(high) - int(low) > 65536:
            high = low + 65536
        while int(low) <= int(high):
            out.add(str(low))
            low += 1
    return out


def delete_network(rt: Runtime, name: str, *, actor: str) -> None:
    """Remove a pool that no node uses and no host is attached to."""
    with rt.db.session() as session:
        network = get_network(session, name)
        lock_placement(session)
        held = session.scalar(
            select(func.count()).select_from(Address).where(Address.network_id == network.id)
        )
        attached = [h.name for h in session.scalars(select(Host)) if network.name in h.networks]
        if held or attached:
            raise Conflict(
                f"network {network.name} has {held} address(es) in use and is attached to "
                f"{len(attached)} host(s)"
            )
        session.delete(network)
        audit.record(session, actor, "network.deleted", f"network:{name}")
        session.commit()
