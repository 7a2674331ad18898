"""The plain data the placement engine takes and returns.

Demands and results are frozen; ``HostView`` and ``NetworkView`` are mutable so that a caller
(a benchmark, a scheduler loop) can commit a placement into them, but the engine never does.
Sizes are integers: cpu in cores, memory in MB.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DiskDemand:
    """One disk a node asks for."""

    name: str
    type: str | None = None
    host_disk: str | None = None


@dataclass(frozen=True, slots=True)
class NicDemand:
    """One network interface a node asks for; ``address`` None means dynamic."""

    device: str
    network: str
    address: str | None = None


@dataclass(frozen=True, slots=True)
class NodeDemand:
    """What one node of an instance needs from the host it lands on."""

    name: str
    cpu: int
    mem: int
    disks: tuple[DiskDemand, ...] = ()
    nics: tuple[NicDemand, ...] = ()
    roles: frozenset[str] = frozenset()
    pin: str | None = None
    constraints: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class FreeDisk:
    """A host disk that no node holds."""

    id: int
    name: str
    type: str
    size: int


@dataclass(slots=True)
class HostView:
    """One host with what is still free on it."""

    id: int
    name: str
    cpu_total: int
    mem_total: int
    cpu_free: int
    mem_free: int
    disks: list[FreeDisk]
    networks: frozenset[str] = frozenset()
    labels: dict[str, str] = field(default_factory=dict)
    state: str = "up"
    disk_total: int = 0
    # Every disk of the host, free or held; feasible() needs them to judge an empty cluster.
    # None means the caller only knows the free ones, so those stand for all of them.
    all_disks: list[FreeDisk] | None = None


@dataclass(slots=True)
class NetworkView:
    """An address pool and the addresses already handed out from it.

    Addresses compare in canonical text form (``str(ipaddress.ip_address(a))``).
    """

    name: str
    cidr: str
    gateway: str | None = None
    bridge: str | None = None
    used: frozenset[str] = frozenset()
    reserved: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AddressAssignment:
    """The address one nic gets, with what the node needs to configure it."""

    network: str
    address: str
    netmask: str
    prefixlen: int
    gateway: str | None
    bridge: str | None


@dataclass(frozen=True, slots=True)
class NodePlacement:
    """Where one node goes: its host, the host disks it holds and its addresses."""

    node: str
    host: str
    host_id: int
    disks: dict[str, FreeDisk]
    nics: dict[str, AddressAssignment]


@dataclass(frozen=True, slots=True)
class Placement:
    """Every node of an instance placed, in the order the nodes were given."""

    nodes: dict[str, NodePlacement]


@dataclass(frozen=True, slots=True)
class Shortage:
    """Why one node cannot be placed: the short dimension, needed against available."""

    node: str
    dimension: str
    needed: int | str
    available: int | str
    message: str


class NoFit(Exception):
    """The instance cannot be placed as a whole; ``shortages`` says why."""

    def __init__(self, shortages: list[Shortage]) -> None:
        self.shortages = list(shortages)
        super().__init__(summarize(self.shortages))

    def __reduce__(self) -> tuple[type[NoFit], tuple[list[Shortage]]]:
        # Celery and multiprocessing pickle exceptions; rebuild from the shortages, not the text.
        return (type(self), (self.shortages,))


def summarize(shortages: list[Shortage]) -> str:
    """Return one line naming the first shortage's node, dimension and how much is missing."""
    if not shortages:
        return "no fit"
    first = shortages[0]
    if isinstance(first.needed, int) and isinstance(first.available, int):
        amount = f"{first.dimension}: {first.needed - first.available} missing"
    else:
        amount = first.dimension
    more = f"; and {len(shortages) - 1} more" if len(shortages) > 1 else ""
    return f"no fit: {first.message} ({amount}){more}"
