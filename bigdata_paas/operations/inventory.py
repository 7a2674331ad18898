"""The inventory: hosts with their disks, and address pools (networks)."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, selectinload

from bigdata_paas.errors import Conflict, NotFound, ValidationError
from bigdata_paas.messaging.publish import after_commit
from bigdata_paas.models import HOST_STATES, Address, Host, HostDisk, Network, Node
from bigdata_paas.names import (
    DISK_NAME,
    DISK_TYPE,
    HOST_ADDRESS,
    HOST_NAME,
    INTERFACE_NAME,
    LABEL_NAME,
    NETWORK_NAME,
)
from bigdata_paas.operations.wakeups import wake_queue

HOST_FIELDS = {"name", "address", "cpu", "mem", "disks", "networks", "labels", "state"}
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


def _is_int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= 2**31 - 1


def _check_labels(labels: Any, problems: list) -> None:
    if not isinstance(labels, dict) or len(labels) > 64:
        problems.append({"field": "labels", "message": "must be an object of <= 64 labels"})
        return
    for key, value in labels.items():
        if not LABEL_NAME.matches(key) or not isinstance(value, str) or len(value) > 255:
            problems.append(
                {
                    "field": f"labels.{key}",
                    "message": f"a label name {LABEL_NAME.message} and its value a string "
                    "of <= 255 chars",
                }
            )


def validate_host(body: Any) -> dict:
    """Check a host document and return it with defaults; report every problem."""
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object describing the host")
    problems: list[dict[str, str]] = []
    for key in sorted(set(body) - HOST_FIELDS):
        problems.append({"field": key, "message": "unknown field"})
    if not HOST_NAME.matches(body.get("name")):
        problems.append({"field": "name", "message": HOST_NAME.message})
    if not HOST_ADDRESS.matches(body.get("address")):
        problems.append({"field": "address", "message": HOST_ADDRESS.message})
    for key in ("cpu", "mem"):
        if not _is_int(body.get(key), 1):
            problems.append({"field": key, "message": "must be an integer >= 1"})
    disks = body.get("disks", [])
    if not isinstance(disks, list) or len(disks) > 256:
        problems.append({"field": "disks", "message": "must be a list of <= 256 disks"})
        disks = []
    seen = set()
    for i, disk in enumerate(disks):
        where = f"disks[{i}]"
        if not isinstance(disk, dict) or set(disk) - {"name", "type", "size"}:
            problems.append({"field": where, "message": "must be an object {name, type, size}"})
            continue
        if not DISK_NAME.matches(disk.get("name")):
            problems.append({"field": f"{where}.name", "message": DISK_NAME.message})
        elif disk["name"] in seen:
            problems.append({"field": f"{where}.name", "message": "duplicate disk name"})
        else:
            seen.add(disk["name"])
        if not DISK_TYPE.matches(disk.get("type", "hdd")):
            problems.append({"field": f"{where}.type", "message": DISK_TYPE.message})
        if not _is_int(disk.get("size", 0)):
            problems.append({"field": f"{where}.size", "message": "must be an integer >= 0"})
    networks = body.get("networks", [])
    if not isinstance(networks, list) or not all(NETWORK_NAME.matches(n) for n in networks):
        problems.append({"field": "networks", "message": "must be a list of network names"})
    _check_labels(body.get("labels", {}), problems)
    if body.get("state", "up") not in HOST_STATES:
        problems.append({"field": "state", "message": f"must be one of {', '.join(HOST_STATES)}"})
    if problems:
        raise ValidationError(problems)
    return {"networks": [], "labels": {}, "state": "up", "disks": [], **body}


def add_host(session: Session, body: Any) -> Host:
    data = validate_host(body)
    if session.scalar(select(Host.id).where(Host.name == data["name"])) is not None:
        raise Conflict(f"host {data['name']} already exists")
    unknown = set(data["networks"]) - set(
        session.scalars(select(Network.name).where(Network.name.in_(data["networks"])))
    )
    if unknown:
        raise ValidationError(f"unknown networks: {', '.join(sorted(unknown))}", field="networks")
    host = Host(
        name=data["name"],
        address=data["address"],
        cpu=data["cpu"],
        mem=data["mem"],
        networks=data["networks"],
        labels=data["labels"],
        state=data["state"],
        disks=[
            HostDisk(name=d["name"], type=d.get("type", "hdd"), size=d.get("size", 0))
            for d in data["disks"]
        ],
    )
    session.add(host)
    wake_queue(session)
    # An agent that already runs on the new host reported to no host until now: ask it to
    # report at once, so the host is managed before the first node is placed there.
    after_commit(session, "pipeline.greet_agent", host.name)
    session.commit()
    return host


def list_hosts(session: Session) -> list[Host]:
    return list(session.scalars(select(Host).options(selectinload(Host.disks)).order_by(Host.name)))


def get_host(session: Session, name: str) -> Host:
    host = session.scalar(select(Host).where(Host.name == name))
    if host is None:
        raise NotFound(f"host {name} not found")
    return host


def host_nodes(session: Session, host: Host) -> list[dict]:
    """The instance nodes placed on ``host``."""
    nodes = session.scalars(select(Node).where(Node.host_id == host.id).order_by(Node.id))
    return [{"instance": n.instance_id, "node": n.name, "cpu": n.cpu, "mem": n.mem} for n in nodes]


def update_host(session: Session, host: Host, body: Any) -> tuple[Host, bool]:
    """Change a host's state or labels; True when capacity may have appeared."""
    if not isinstance(body, dict) or not body:
        raise ValidationError("body must be a JSON object with state and/or labels")
    problems = [
        {"field": k, "message": "only state and labels can be changed"}
        for k in sorted(set(body) - {"state", "labels"})
    ]
    if "state" in body and body["state"] not in HOST_STATES:
        problems.append({"field": "state", "message": f"must be one of {', '.join(HOST_STATES)}"})
    if "labels" in body:
        _check_labels(body["labels"], problems)
    if problems:
        raise ValidationError(problems)
    lock_placement(session)  # no placement lands on a host as it is drained or relabelled
    session.refresh(host)
    opened = (body.get("state") == "up" and host.state != "up") or "labels" in body
    host.state = body.get("state", host.state)
    host.labels = body.get("labels", host.labels)
    if opened:
        wake_queue(session)
    session.commit()
    return host, opened


def delete_host(session: Session, host: Host) -> None:
    """Remove a host; refused while any node holds resources on it."""
    lock_placement(session)  # a placement in flight commits its nodes first, or sees no host
    held = session.scalar(select(func.count()).select_from(Node).where(Node.host_id == host.id))
    if held:
        raise Conflict(f"host {host.name} holds {held} node(s); drain it and destroy them first")
    session.delete(host)
    wake_queue(session)  # instances that waited for it learn why they wait now
    session.commit()


def _parse_reserved(
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network, reserved: Any, problems: list
) -> list[str]:
    if not isinstance(reserved, list) or len(reserved) > 1024:
        problems.append({"field": "reserved", "message": "must be a list of addresses or ranges"})
        return []
    out = []
    for i, item in enumerate(reserved):
        try:
            if not isinstance(item, str):
                raise ValueError("not a string")
            first, _, last = item.partition("-")
            low, high = (
                ipaddress.ip_address(first.strip()),
                ipaddress.ip_address((last or first).strip()),
            )
            if low not in cidr or high not in cidr or high < low:
                raise ValueError("outside the network or reversed")
            out.append(item)
        except ValueError as exc:
            problems.append(
                {
                    "field": f"reserved[{i}]",
                    "message": f"must be an address or range a-b in the cidr ({exc})",
                }
            )
    return out


def add_network(session: Session, body: Any) -> Network:
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object {name, cidr, gateway, bridge, reserved}")
    problems = [
        {"field": k, "message": "unknown field"}
        for k in sorted(set(body) - {"name", "cidr", "gateway", "bridge", "reserved"})
    ]
    if not NETWORK_NAME.matches(body.get("name")):
        problems.append({"field": "name", "message": NETWORK_NAME.message})
    cidr = None
    try:
        if not isinstance(body.get("cidr"), str):
            # ip_network() also takes integers (and booleans): 5 would be 0.0.0.5/32
            raise TypeError("not a string")
        cidr = ipaddress.ip_network(body["cidr"], strict=True)
        if cidr.num_addresses < 4:
            raise ValueError("too small")
    except (TypeError, ValueError) as exc:
        problems.append({"field": "cidr", "message": f"must be a network like 10.0.0.0/24 ({exc})"})
    gateway = body.get("gateway")
    if gateway is not None:
        try:
            if not isinstance(gateway, str):
                raise TypeError("not a string")
            address = ipaddress.ip_address(gateway)
            if cidr is not None and address not in cidr:
                raise ValueError("outside the network")
        except (TypeError, ValueError) as exc:
            problems.append({"field": "gateway", "message": f"must be an address in cidr ({exc})"})
    bridge = body.get("bridge")
    if bridge is not None and not INTERFACE_NAME.matches(bridge):
        problems.append({"field": "bridge", "message": INTERFACE_NAME.message})
    reserved = _parse_reserved(cidr, body.get("reserved", []), problems) if cidr else []
    if problems:
        raise ValidationError(problems)
    if session.scalar(select(Network.id).where(Network.name == body["name"])) is not None:
        raise Conflict(f"network {body['name']} already exists")
    network = Network(
        name=body["name"], cidr=str(cidr), gateway=gateway, bridge=bridge, reserved=reserved
    )
    session.add(network)
    wake_queue(session)
    session.commit()
    return network


def list_networks(session: Session) -> list[Network]:
    return list(session.scalars(select(Network).order_by(Network.name)))


def get_network(session: Session, name: str) -> Network:
    network = session.scalar(select(Network).where(Network.name == name))
    if network is None:
        raise NotFound(f"network {name} not found")
    return network


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
        while low <= high:
            out.add(str(low))
            low += 1
    return out


def delete_network(session: Session, network: Network) -> None:
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
    session.commit()
