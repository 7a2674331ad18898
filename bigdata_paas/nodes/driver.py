"""What every node driver offers a host agent, and how ``PAAS_NODE_DRIVER`` picks one."""

from __future__ import annotations

import builtins
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from bigdata_paas.nodes.errors import NodeStartError
from bigdata_paas.nodes.spec import Disk, NodeSpec

DRIVERS = ("auto", "podman", "process")

#: label keys every node carries (containers' labels; the process driver's state records)
LABEL_INSTANCE = "paas.instance"
LABEL_NODE = "paas.node"
LABEL_HOST = "paas.host"
LABEL_DIGEST = "paas.spec"


@dataclass(frozen=True)
class NodeHandle:
    """A started node: what the agent reports back to the platform."""

    instance_id: str
    node: str
    host: str
    driver: str
    name: str
    runtime_id: str
    addresses: Mapping[str, str] = field(default_factory=dict)
    #: False when the node was already running (a redelivered start)
    created: bool = True


@dataclass(frozen=True)
class NodeState:
    """A node found on this host by its labels (for reconcile)."""

    instance_id: str
    node: str
    host: str
    name: str
    state: str  # "running", or the runtime's word for not running ("exited", "created"...)
    runtime_id: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class Mount:
    source: str
    destination: str
    mode: str


@dataclass(frozen=True)
class NodeInfo:
    """A node's limits, mounts and addresses as the runtime reports them."""

    name: str
    state: str
    runtime_id: str
    pid: int | None
    cpus: float | None
    memory_mb: int | None
    mounts: tuple[Mount, ...] = ()
    addresses: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    #: other limits by name (nofile, nproc, address space...), as numbers
    limits: Mapping[str, int | None] = field(default_factory=dict)


def disk_source(spec: NodeSpec, disk: Disk, *, create_origins: bool) -> Path:
    """The directory a node's disk binds, made if missing. Its origin (the host's disk) must
    be there already unless the driver creates origins (a laptop has no disks to mount)."""
    origin = Path(disk.origin)
    if not origin.is_dir():
        if not create_origins:
            raise NodeStartError(
                f"disk {disk.name or disk.destination}: {origin} does not exist on this "
                "host (is the disk mounted?)",
                reason="missing disk origin",
            )
        origin.mkdir(parents=True, exist_ok=True)
    source = spec.disk_source(disk)
    source.mkdir(parents=True, exist_ok=True)
    return source


def start_failed(spec: NodeSpec, exc: OSError) -> NodeStartError:
    """A node start the operating system refused (a directory, a process, a file)."""
    return NodeStartError(
        f"node {spec.name}: {exc}", reason=str(exc), node=spec.name, instance_id=spec.instance_id
    )


@runtime_checkable
class NodeDriver(Protocol):
    """A runtime that starts, stops, lists and inspects the nodes of one host."""

    name: str

    def ensure_network(
        self, name: str, cidr: str, gateway: str | None = None, bridge: str | None = None
    ) -> str | None:
        """Make the runtime's network for a platform network (idempotent); its name or None."""
        ...

    def remove_network(self, name: str) -> bool: ...

    def start(self, spec: NodeSpec) -> NodeHandle:
        """Start the node, or find it already running (idempotent); NodeStartError if not."""
        ...

    def stop(self, instance_id: str, node: str) -> bool:
        """Stop and remove the node; True if there was something to stop. Never fails on gone."""
        ...

    def list(
        self,
        *,
        instance_id: str | None = None,
        host: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[NodeState]: ...

    def inspect(self, instance_id: str, node: str) -> NodeInfo | None: ...

    def remove_instance_dirs(
        self, instance_id: str, origins: Iterable[str]
    ) -> builtins.list[Path]: ...


def podman_works(timeout: float = 20) -> bool:
    """True if ``podman`` is on PATH and answers (``podman version``)."""
    if shutil.which("podman") is None:
        return False
    from bigdata_paas.nodes.podman_cli import podman_env

    try:
        done = subprocess.run(
            ["podman", "version", "--format", "{{.Client.Version}}"],
            capture_output=True,
            timeout=timeout,
            env=podman_env(),
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def select_driver(name: str = "auto", *, state_dir: str | Path, **options) -> NodeDriver:
    """The driver ``PAAS_NODE_DRIVER`` names: ``auto`` (podman when it works, else process),
    ``podman`` or ``process``. ``options`` go to the driver's constructor."""
    if name not in DRIVERS:
        raise ValueError(f"PAAS_NODE_DRIVER must be one of {', '.join(DRIVERS)}, got {name!r}")
    if name == "auto":
        name = "podman" if podman_works() else "process"
    if name == "podman":
        from bigdata_paas.nodes.podman import PodmanDriver

        return PodmanDriver(state_dir=state_dir, **options)
    from bigdata_paas.nodes.process import ProcessDriver

    return ProcessDriver(state_dir=state_dir, **options)
