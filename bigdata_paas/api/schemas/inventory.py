"""Schemas of the inventory: hosts with their disks, networks with their addresses."""

from __future__ import annotations

import ipaddress
from typing import Any

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

from bigdata_paas import names
from bigdata_paas.api.schemas.base import Strict, count_field, name_field
from bigdata_paas.models import HOST_STATES

HOST_STATE = validate.OneOf(HOST_STATES, error="must be one of {choices}")


class MaxEntries(validate.Validator):
    """At most ``most`` entries in an object (documented as ``maxProperties``)."""

    def __init__(self, most: int) -> None:
        self.most = most

    def __call__(self, value: dict) -> dict:
        if len(value) > self.most:
            raise ValidationError(f"must have at most {self.most} entries")
        return value


def _labels(**kwargs) -> fields.Dict:
    return fields.Dict(
        keys=name_field(names.LABEL_NAME),
        values=fields.String(validate=validate.Length(max=255)),
        validate=MaxEntries(64),
        metadata={"maxProperties": 64},
        **kwargs,
    )


class HostDiskIn(Strict):
    name = name_field(names.DISK_NAME, required=True)
    type = name_field(names.DISK_TYPE, load_default="hdd", metadata={"example": "hdd"})
    size = count_field(0, load_default=0, metadata={"description": "GB"})


class HostIn(Strict):
    name = name_field(names.HOST_NAME, required=True, metadata={"example": "node01"})
    address = name_field(names.HOST_ADDRESS, required=True, metadata={"example": "127.0.0.1"})
    cpu = count_field(1, required=True)
    mem = count_field(1, required=True, metadata={"description": "MB"})
    disks = fields.List(
        fields.Nested(HostDiskIn), load_default=list, validate=validate.Length(max=256)
    )
    networks = fields.List(name_field(names.NETWORK_NAME), load_default=list)
    labels = _labels(load_default=dict)
    state = fields.String(validate=HOST_STATE, load_default="up")

    @validates("disks")
    def _distinct_disks(self, disks: list[dict], **_) -> None:
        seen: set[str] = set()
        for i, disk in enumerate(disks):
            name = disk.get("name") if isinstance(disk, dict) else None
            if name in seen:
                raise ValidationError({i: {"name": ["duplicate disk name"]}})
            if name is not None:
                seen.add(name)


class HostPatch(Strict):
    state = fields.String(validate=HOST_STATE)
    labels = _labels()

    @validates_schema
    def _something(self, data: dict, **_) -> None:
        if not data:
            raise ValidationError("give state and/or labels")


class HostDiskOut(Schema):
    name = fields.String()
    type = fields.String()
    size = fields.Integer()
    free = fields.Boolean(metadata={"description": "no node holds it"})


class Resources(Schema):
    cpu = fields.Integer()
    mem = fields.Integer()
    disks = fields.Integer()


class HostNode(Schema):
    instance = fields.String()
    node = fields.String()
    cpu = fields.Integer()
    mem = fields.Integer()


class AgentOut(Schema):
    driver = fields.String(metadata={"enum": ["podman", "process"]})
    machine = fields.String(metadata={"description": "the machine the agent runs on"})
    pid = fields.String()
    started_at = fields.String()
    last_seen = fields.String(metadata={"description": "its last report (heartbeat)"})


class HostOut(Schema):
    name = fields.String()
    address = fields.String()
    cpu = fields.Integer()
    mem = fields.Integer(metadata={"description": "MB"})
    disks = fields.List(fields.Nested(HostDiskOut))
    networks = fields.List(fields.String())
    labels = fields.Dict(keys=fields.String(), values=fields.String())
    state = fields.String(metadata={"enum": list(HOST_STATES)})
    state_reason = fields.String(
        allow_none=True,
        metadata={"description": "why it is in its state (a drain, a silent agent)"},
    )
    state_since = fields.String(allow_none=True)
    agent = fields.Nested(
        AgentOut, allow_none=True, metadata={"description": "null: no agent ever reported"}
    )
    allocated = fields.Nested(Resources)
    free = fields.Nested(Resources)
    nodes = fields.List(fields.Nested(HostNode), metadata={"description": "on GET of one host"})
    created_at = fields.String()


class HostsOut(Schema):
    hosts = fields.List(fields.Nested(HostOut))


class NetworkIn(Strict):
    name = name_field(names.NETWORK_NAME, required=True, metadata={"example": "lan"})
    cidr = fields.String(required=True, metadata={"example": "10.0.0.0/24"})
    gateway = fields.String(allow_none=True, load_default=None)
    bridge = name_field(names.INTERFACE_NAME, allow_none=True, load_default=None)
    reserved = fields.List(
        fields.String(),
        load_default=list,
        validate=validate.Length(max=1024),
        metadata={"description": "addresses or ranges a-b in the cidr that are not handed out"},
    )

    @validates("cidr")
    def _a_network(self, value: str, **_) -> None:
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValidationError(f"must be a network like 10.0.0.0/24 ({exc})") from None
        if network.num_addresses < 4:
            raise ValidationError("must be a network like 10.0.0.0/24 (too small)")

    @validates_schema(skip_on_field_errors=False)
    def _inside(self, data: dict, **_) -> None:
        try:
            cidr = ipaddress.ip_network(data["cidr"], strict=True)
        except (KeyError, TypeError, ValueError):
            cidr = None  # reported by _a_network (or as missing)
        found: dict[str, Any] = {}
        gateway = data.get("gateway")
        if gateway is not None:
            try:
                address = ipaddress.ip_address(gateway)
                if cidr is not None and address not in cidr:
                    raise ValueError("outside the network")
            except ValueError as exc:
                found["gateway"] = [f"must be an address in cidr ({exc})"]
        for i, item in enumerate(data.get("reserved") or []):
            problem = _reserved_problem(item, cidr)
            if problem:
                found.setdefault("reserved", {})[i] = [problem]
        if found:
            raise ValidationError(found)

    @post_load
    def _normalized(self, data: dict, **_) -> dict:
        return {**data, "cidr": str(ipaddress.ip_network(data["cidr"], strict=True))}


def _reserved_problem(
    item: str, cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None
) -> str | None:
    """Why ``item`` is not an address or a range ``a-b`` inside ``cidr``; None if it is."""
    first, _, last = item.partition("-")
    try:
        low = ipaddress.ip_address(first.strip())
        high = ipaddress.ip_address((last or first).strip())
        if cidr is not None and (low not in cidr or high not in cidr or int(high) < int(low)):
            raise ValueError("outside the network or reversed")
    except ValueError as exc:
        return f"must be an address or range a-b in the cidr ({exc})"
    return None


class NetworkUser(Schema):
    address = fields.String()
    device = fields.String()
    node = fields.String()
    instance = fields.String()


class NetworkOut(Schema):
    name = fields.String()
    cidr = fields.String()
    gateway = fields.String(allow_none=True)
    bridge = fields.String(allow_none=True)
    reserved = fields.List(fields.String())
    size = fields.Integer(metadata={"description": "addresses that can be handed out"})
    used = fields.Integer()
    free = fields.Integer()
    holders = fields.List(fields.Nested(NetworkUser))


class NetworksOut(Schema):
    networks = fields.List(fields.Nested(NetworkOut))
