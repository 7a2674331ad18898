"""Validate and normalize a rendered instance spec: ``{"nodes": {...}, "services": {...}}``.

Node fields are read in the original system's dialect (``rendering.dialect``): ``"cpu": "2"``
is stored as 2 and ``"check_ports": "22,8088"`` as ``[22, 8088]``, so nothing downstream of
this validation (the stored spec, placement, the orquestrator's instance file, the API) sees a
number written as a string or a list written as text. The ``services`` section and fields this
module does not know are free-form: they are kept as written.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

from bigdata_paas.errors import SpecError
from bigdata_paas.names import (
    NODE_DEVICE_NAME,
    NODE_DISK_NAME,
    NODE_NAME,
    SPEC_SERVICE_NAME,
    NameRule,
)
from bigdata_paas.rendering.dialect import as_boolean, as_integer, as_list, as_number_list
from bigdata_paas.rendering.options import describe_value as _show

# Stored in integer columns; a template must not overflow them.
MAX_INT = 2**31 - 1
# A count like "disks": 1000000000 is tiny JSON but would build a billion entries.
MAX_DISKS_PER_NODE = 256
MAX_REPORTED = 50
NETWORK_TYPES = ("dynamic", "static")
# Written by placement; whatever the template says is dropped.
PLATFORM_NODE_FIELDS = ("host", "id", "status")


def _key(name: Any) -> str:
    text = str(name)
    return text if len(text) <= 70 else text[:67] + "..."


class _Checker:
    """Collects every problem of a spec, each naming its path."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def is_name(self, path: str, name: Any, rule: NameRule) -> bool:
        if rule.matches(name):
            return True
        self.add(path, f"invalid {rule.kind} {_show(name)}: use {rule.description}")
        return False

    def objects(self, path: str, value: dict, rule: NameRule) -> Iterator[tuple[str, str, dict]]:
        """(name, path, body) of each entry of ``value`` whose name follows ``rule`` and whose
        body is an object; the others are reported."""
        for name, body in value.items():
            where = f"{path}.{_key(name)}"
            if not self.is_name(where, name, rule):
                continue
            if not isinstance(body, dict):
                self.add(where, f"must be an object, got {_show(body)}")
                continue
            yield name, where, body

    def positive_int(self, path: str, value: Any, *, high: int = MAX_INT) -> Any:
        value = as_integer(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            self.add(path, f"must be an integer >= 1, got {_show(value)}")
        elif value > high:
            self.add(path, f"must be at most {high}, got {value}")
        return value

    def port(self, path: str, value: Any) -> Any:
        value = as_integer(value)
        if not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535):
            self.add(path, f"must be a port number between 1 and 65535, got {_show(value)}")
        return value

    def ports(self, path: str, value: Any) -> Any:
        ports = as_number_list(value)
        if not isinstance(ports, list):
            self.add(path, f"must be a list of port numbers, got {_show(value)}")
            return value
        return [self.port(f"{path}[{i}]", item) for i, item in enumerate(ports)]

    def boolean(self, path: str, value: Any) -> Any:
        value = as_boolean(value)
        if not isinstance(value, bool):
            self.add(path, f"must be true or false, got {_show(value)}")
        return value

    def string(self, path: str, value: Any, *, empty: bool = True) -> bool:
        if isinstance(value, str) and (empty or value):
            return True
        self.add(path, f"must be a {'' if empty else 'non-empty '}string, got {_show(value)}")
        return False

    def string_list(self, path: str, value: Any) -> bool:
        if not isinstance(value, list):
            self.add(path, f"must be a list of strings, got {_show(value)}")
            return False
        ok = True
        for i, item in enumerate(value):
            ok = self.string(f"{path}[{i}]", item) and ok
        return ok

    def disks(self, path: str, value: Any) -> dict[str, Any]:
        value = as_integer(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= MAX_DISKS_PER_NODE:
                self.add(
                    path, f"a disk count must be between 0 and {MAX_DISKS_PER_NODE}, got {value}"
                )
                return {}
            return {f"disk{i}": {} for i in range(value)}
        if not isinstance(value, dict):
            self.add(path, f"must be an object of disks or a disk count, got {_show(value)}")
            return {}
        if len(value) > MAX_DISKS_PER_NODE:
            self.add(path, f"a node may have at most {MAX_DISKS_PER_NODE} disks, got {len(value)}")
            return {}
        disks: dict[str, Any] = {}
        for name, where, body in self.objects(path, value, NODE_DISK_NAME):
            for field in ("type", "destination", "mode"):
                if field in body:
                    self.string(f"{where}.{field}", body[field])
            disks[name] = {k: copy.deepcopy(v) for k, v in body.items() if k != "origin"}
        return disks

    def networks(self, path: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.add(path, f"must be an object of network devices, got {_show(value)}")
            return {}
        networks: dict[str, Any] = {}
        for device, where, body in self.objects(path, value, NODE_DEVICE_NAME):
            if "networkname" not in body:
                self.add(f"{where}.networkname", "is required")
            else:
                self.string(f"{where}.networkname", body["networkname"], empty=False)
            kind = body.get("type", "dynamic")
            if kind not in NETWORK_TYPES:
                self.add(f"{where}.type", f'must be "dynamic" or "static", got {_show(kind)}')
            clean = {k: copy.deepcopy(v) for k, v in body.items()}
            clean["type"] = kind
            if kind == "static":
                address = body.get("address")
                if address is None:
                    self.add(f"{where}.address", "is required for a static network")
                elif not isinstance(address, str) or not _is_ip(address):
                    self.add(f"{where}.address", f"must be an IP address, got {_show(address)}")
            else:
                # Placement assigns dynamic addresses.
                clean.pop("address", None)
            networks[device] = clean
        return networks

    def node(self, path: str, body: Any) -> dict[str, Any] | None:
        if not isinstance(body, dict):
            self.add(path, f"must be an object, got {_show(body)}")
            return None
        node: dict[str, Any] = {}
        for field in ("cpu", "mem"):
            if field not in body:
                self.add(f"{path}.{field}", "is required")
            else:
                node[field] = self.positive_int(f"{path}.{field}", body[field])
        for field, value in body.items():
            if field in PLATFORM_NODE_FIELDS or field in node:
                continue
            node[field] = self.node_field(f"{path}.{_key(field)}", field, value)
        node.setdefault("disks", {})
        node.setdefault("networks", {})
        return node

    def node_field(self, where: str, field: str, value: Any) -> Any:
        """Check one field of a node; return it as stored (the dialect read, copied)."""
        if field == "disks":
            return self.disks(where, value)
        if field == "networks":
            return self.networks(where, value)
        if field == "port":
            return self.port(where, value)
        if field == "check_ports":
            return self.ports(where, value)
        if field == "use_custom_disks":
            return self.boolean(where, value)
        if field in ("tags", "services"):
            value = as_list(value)
            self.string_list(where, value)
        elif field == "required_node":
            self.string(where, value, empty=False)
        elif field == "constraints":
            if not isinstance(value, dict):
                self.add(where, f"must be an object of strings, got {_show(value)}")
            else:
                for key, item in value.items():
                    self.string(f"{where}.{_key(key)}", item)
        elif field in ("docker_image", "docker_opts"):
            self.string(where, value)
        return copy.deepcopy(value)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def validate_spec(spec: Any, *, max_nodes: int) -> dict[str, Any]:
    """Validate a rendered instance spec; return a normalized deep copy or raise SpecError."""
    try:
        return _validate(spec, max_nodes)
    except RecursionError:
        raise SpecError("instance spec is nested too deeply") from None


def _validate(spec: Any, max_nodes: int) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise SpecError(f"instance spec must be an object with nodes, got {_show(spec)}")
    nodes = spec.get("nodes")
    if nodes is None:
        raise SpecError("nodes: is required")
    if not isinstance(nodes, dict):
        raise SpecError(f"nodes: must be an object of nodes, got {_show(nodes)}")
    if not nodes:
        raise SpecError("nodes: an instance needs at least one node")
    # Checked before anything else so a huge spec is refused without walking it.
    if len(nodes) > max_nodes:
        raise SpecError(f"instance has {len(nodes)} nodes; the maximum is {max_nodes}")

    check = _Checker()
    clean_nodes: dict[str, Any] = {}
    for name, body in nodes.items():
        path = f"nodes.{_key(name)}"
        if not check.is_name(path, name, NODE_NAME):
            continue
        node = check.node(path, body)
        if node is not None:
            clean_nodes[name] = node

    clean_services: dict[str, Any] = {}
    services = spec.get("services", {})
    if not isinstance(services, dict):
        check.add("services", f"must be an object of services, got {_show(services)}")
        services = {}
    for name, path, body in check.objects("services", services, SPEC_SERVICE_NAME):
        members = body.get("nodes", [])
        if check.string_list(f"{path}.nodes", members):
            for i, member in enumerate(members):
                if member not in nodes:
                    check.add(f"{path}.nodes[{i}]", f"unknown node {_show(member)}")
        clean_services[name] = copy.deepcopy(body)

    if check.problems:
        shown = check.problems[:MAX_REPORTED]
        extra = len(check.problems) - len(shown)
        raise SpecError("; ".join(shown) + (f"; and {extra} more problems" if extra else ""))

    result: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "nodes":
            result["nodes"] = clean_nodes
        elif key == "services":
            result["services"] = clean_services
        else:
            result[key] = copy.deepcopy(value)
    result.setdefault("services", clean_services)
    return result


def node_totals(nodes: Iterable[dict[str, Any]]) -> dict[str, int]:
    """What validated nodes ask for together: how many, their cores, memory (MB) and disks."""
    nodes = list(nodes)
    return {
        "nodes": len(nodes),
        "cpu": sum(n["cpu"] for n in nodes),
        "mem": sum(n["mem"] for n in nodes),
        "disks": sum(len(n.get("disks") or {}) for n in nodes),
    }


def node_roles(spec: dict[str, Any]) -> dict[str, list[str]]:
    """Return node name -> sorted services that list the node or that the node lists."""
    roles: dict[str, set[str]] = {
        name: set(node.get("services") or []) for name, node in spec.get("nodes", {}).items()
    }
    for service, body in (spec.get("services") or {}).items():
        for member in body.get("nodes") or []:
            if member in roles:
                roles[member].add(service)
    return {name: sorted(names) for name, names in roles.items()}
