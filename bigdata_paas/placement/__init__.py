"""The placement engine: put an instance's nodes on hosts, all or nothing, over plain data."""

from .engine import ANTI_AFFINITY_MODES, STRATEGIES, Scheduler, feasible, place
from .model import (
    AddressAssignment,
    DiskDemand,
    FreeDisk,
    HostView,
    NetworkView,
    NicDemand,
    NodeDemand,
    NodePlacement,
    NoFit,
    Placement,
    Shortage,
)

__all__ = [
    "ANTI_AFFINITY_MODES",
    "STRATEGIES",
    "AddressAssignment",
    "DiskDemand",
    "FreeDisk",
    "HostView",
    "NetworkView",
    "NicDemand",
    "NoFit",
    "NodeDemand",
    "NodePlacement",
    "Placement",
    "Scheduler",
    "Shortage",
    "feasible",
    "place",
]
