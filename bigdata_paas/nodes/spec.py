"""A node as a runtime starts it: plain, checked data built from the platform's placed node.

Every string here ends up in a podman argument list or a path on the host, so the checks are
strict: names as the platform allows them, absolute normalized paths without ``:`` or ``,``
(podman's separators), addresses inside their network.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import posixpath
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bigdata_paas import names
from bigdata_paas.nodes.docker_opts import (
    NodeOptions,
    check_image,
    parse_command,
    parse_docker_opts,
)
from bigdata_paas.nodes.errors import NodeOptionError

MODES = ("rw", "ro")
PREFIX = "paas"


def _fail(option: str, message: str) -> NodeOptionError:
    return NodeOptionError(option, message)


def check_name(value: object, what: str) -> str:
    # node, disk, device and network names, as the spec validation allows them
    if not isinstance(value, str) or not names.NODE_NAME.matches(value):
        raise _fail(what, f"invalid {what} name {value!r}")
    return value


def check_instance_id(value: object) -> str:
    if not isinstance(value, str) or not names.INSTANCE_ID.matches(value):
        raise _fail("instance", f"invalid instance id {value!r}: letters, digits and '_' only")
    return value


def check_path(value: object, what: str) -> str:
    """An absolute, normalized path that podman's ``-v SRC:DST:MODE`` can carry."""
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or posixpath.normpath(value) != value
        or value.startswith("//")
        or any(c in value for c in ":,\n\x00")
    ):
        raise _fail(what, f"{what} must be an absolute, normalized path without ':' or ','")
    return value


def container_name(instance_id: str, node: str) -> str:
    """The node's container (and state) name: deterministic, valid for podman."""
    return f"{PREFIX}-{check_instance_id(instance_id)}-{check_name(node, 'node')}"


def network_name(network: str, scope: str = "") -> str:
    """The container network made from the platform network ``network``: ``paas-<network>``,
    or ``paas-<scope>-<network>`` for a deployment that shares the container runtime with
    others (each deployment's ``demo`` is then its own network)."""
    check_name(network, "network")
    return f"{PREFIX}-{check_name(scope, 'scope')}-{network}" if scope else f"{PREFIX}-{network}"


@dataclass(frozen=True)
class Disk:
    """An allocated disk: the host disk's mount (``origin``), where the node sees it."""

    origin: str
    destination: str
    mode: str = "rw"
    name: str = ""

    def __post_init__(self) -> None:
        check_path(self.origin, "disk origin")
        check_path(self.destination, "disk destination")
        if self.destination == "/":
            raise _fail("disk destination", "a disk cannot be mounted on /")
        if self.mode not in MODES:
            raise _fail("disk mode", f"disk mode must be rw or ro, got {self.mode!r}")


@dataclass(frozen=True)
class Interface:
    """An interface of the node on a platform network, with its static address."""

    device: str
    network: str
    cidr: str
    address: str
    gateway: str | None = None
    bridge: str | None = None

    def __post_init__(self) -> None:
        check_name(self.device, "device")
        check_name(self.network, "network")
        try:
            net = ipaddress.ip_network(self.cidr, strict=False)
            address = ipaddress.ip_address(self.address)
            gateway = ipaddress.ip_address(self.gateway) if self.gateway else None
        except ValueError as exc:
            raise _fail("networks", f"interface {self.device}: {exc}") from None
        if address not in net or (gateway is not None and gateway not in net):
            raise _fail("networks", f"interface {self.device}: {address} is not in {net}")
        # podman would give a container the bridge's own address without a word
        if address == gateway or (
            net.num_addresses > 2 and address in (net.network_address, net.broadcast_address)
        ):
            raise _fail(
                "networks",
                f"interface {self.device}: {address} is the gateway, network or broadcast "
                f"address of {net}",
            )


@dataclass(frozen=True)
class NodeSpec:
    """One node to run: what the drivers need, nothing of the platform's internals."""

    instance_id: str
    name: str
    host: str = ""
    image: str | None = None
    command: tuple[str, ...] = ()
    cpu: float = 1.0
    mem: int = 1024
    disks: tuple[Disk, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    options: NodeOptions = field(default_factory=NodeOptions)
    check_ports: tuple[int, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    #: the node's own configuration, served by the node image on its check ports
    config: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_instance_id(self.instance_id)
        check_name(self.name, "node")
        if self.host:
            check_name(self.host, "host")
        if self.image is not None:
            check_image(self.image)
        if isinstance(self.cpu, bool) or not isinstance(self.cpu, int | float) or self.cpu <= 0:
            raise _fail("cpu", f"cpu must be a number of cores > 0, got {self.cpu!r}")
        if isinstance(self.mem, bool) or not isinstance(self.mem, int) or self.mem < 6:
            # podman refuses less than 6 MB
            raise _fail("mem", f"mem must be an integer number of MB >= 6, got {self.mem!r}")
        for port in self.check_ports:
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise _fail("check_ports", f"invalid check port {port!r}")
        for key, value in self.labels.items():
            if not names.NODE_LABEL_KEY.matches(key) or not isinstance(value, str) or "\n" in value:
                raise _fail("labels", f"invalid label {key!r}")
        destinations = [d.destination for d in self.disks]
        if len(set(destinations)) != len(destinations):
            raise _fail("disks", "two disks share a destination")
        devices = [i.device for i in self.interfaces]
        if len(set(devices)) != len(devices):
            raise _fail("networks", "two interfaces share a device")

    @property
    def container_name(self) -> str:
        return container_name(self.instance_id, self.name)

    @property
    def address(self) -> str | None:
        """The first interface's address (the one health checks use)."""
        return self.interfaces[0].address if self.interfaces else None

    def instance_dir(self, disk: Disk) -> Path:
        """The per-instance directory under a host disk (removed on destroy)."""
        return Path(disk.origin) / self.instance_id

    def disk_source(self, disk: Disk) -> Path:
        """What is mounted at the disk's destination: the node's directory in the instance's."""
        return self.instance_dir(disk) / self.name

    def document(self) -> dict[str, Any]:
        """The node's own configuration as one JSON object (node name and instance first)."""
        return {
            "instance": self.instance_id,
            "node": self.name,
            "host": self.host,
            "address": self.address,
            "addresses": {i.device: i.address for i in self.interfaces},
            "check_ports": list(self.check_ports),
            "cpu": self.cpu,
            "mem": self.mem,
            "disks": [{"destination": d.destination, "mode": d.mode} for d in self.disks],
            **{k: v for k, v in self.config.items() if k not in ("instance", "node")},
        }

    def digest(self) -> str:
        """A short digest of everything that shapes the running node (labelled on it)."""
        data = asdict(self)
        data["options"] = asdict(self.options) | {"tokens": None}
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def base_env(self) -> dict[str, str]:
        """The PAAS_* variables every node gets, whatever the driver."""
        return {
            "PAAS_INSTANCE_ID": self.instance_id,
            "PAAS_NODE_NAME": self.name,
            "PAAS_NODE_HOST": self.host,
            "PAAS_NODE_ADDRESS": self.address or "",
            "PAAS_NODE_PORTS": ",".join(str(p) for p in self.check_ports),
        }


def _disks(placed: Mapping[str, Any], disk_root: Path | None) -> tuple[Disk, ...]:
    disks = []
    for body in placed.get("disks") or []:
        name = check_name(body.get("name", "disk"), "disk")
        origin = body.get("origin")
        if not isinstance(origin, str):
            raise _fail("disks", f"disk {name} has no origin (is the node placed?)")
        if disk_root is not None:
            # several hosts on one machine (a laptop, the tests): each host's disks under its root
            origin = str(Path(disk_root) / check_path(origin, "disk origin").lstrip("/"))
        disks.append(
            Disk(
                origin=origin,
                destination=body.get("destination") or f"/data/{name}",
                mode=body.get("mode") or "rw",
                name=name,
            )
        )
    return tuple(disks)


def _interfaces(
    placed: Mapping[str, Any], networks: Mapping[str, Mapping[str, Any]]
) -> tuple[Interface, ...]:
    interfaces = []
    for device, body in (placed.get("networks") or {}).items():
        net_name = body.get("networkname")
        if net_name not in networks:
            raise _fail("networks", f"interface {device}: unknown network {net_name!r}")
        net = networks[net_name]
        if not body.get("address"):
            raise _fail("networks", f"interface {device} has no address (is the node placed?)")
        interfaces.append(
            Interface(
                device=device,
                network=net_name,
                cidr=net["cidr"],
                address=body["address"],
                gateway=body.get("gateway") or net.get("gateway"),
                bridge=body.get("bridge") or net.get("bridge"),
            )
        )
    return tuple(interfaces)


def node_spec(
    placed: Mapping[str, Any],
    instance_id: str,
    networks: Mapping[str, Mapping[str, Any]],
    *,
    image_allow: str | Iterable[str] | None = None,
    disk_root: str | Path | None = None,
    labels: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
) -> NodeSpec:
    """Build a NodeSpec from a placed node (``operations/placement.placed_node``).

    ``networks`` maps each platform network name to ``{"cidr", "gateway", "bridge"}``.
    ``disk_root`` re-roots every disk origin (``/data/sdb`` -> ``<disk_root>/data/sdb``) for
    machines that play several hosts. ``config`` adds fields to the node's served document.
    Raises NodeOptionError (a ValueError) naming the field it refuses.
    """
    name = check_name(placed.get("name"), "node")
    image = placed.get("docker_image") or None
    if image is not None:
        allow = (
            image_allow
            if image_allow is None or isinstance(image_allow, str)
            else tuple(image_allow)
        )
        check_image(image, allow)
    ports = placed.get("check_ports")
    if ports is None and placed.get("port") is not None:
        ports = [placed["port"]]
    served = {k: placed[k] for k in ("services", "port", "tags") if k in placed}
    return NodeSpec(
        instance_id=instance_id,
        name=name,
        host=placed.get("host") or "",
        image=image,
        command=parse_command(placed.get("command")),
        cpu=placed["cpu"],
        mem=placed["mem"],
        disks=_disks(placed, Path(disk_root) if disk_root is not None else None),
        interfaces=_interfaces(placed, networks),
        options=parse_docker_opts(placed.get("docker_opts")),
        check_ports=tuple(ports or ()),
        labels=dict(labels or {}),
        config={**served, **(config or {})},
    )


def remove_instance_dirs(instance_id: str, origins: Iterable[str]) -> list[Path]:
    """Delete ``<origin>/<instance_id>`` under every disk origin; return what was removed.

    Never the origin itself: the instance id is checked, so the path is always one level down.
    """
    check_instance_id(instance_id)
    removed = []
    for origin in origins:
        path = Path(check_path(origin, "disk origin")) / instance_id
        if path.is_symlink():
            path.unlink()
            removed.append(path)
        elif path.exists():
            shutil.rmtree(path)
            removed.append(path)
    return removed
