"""Gang placement of an instance's nodes on hosts: all nodes or none, pure and deterministic.

The index: every host gets a *slot* (its rank by name, then id) and a key
``((disks_free * C + cpu_free) * S + mem_free) * N + slot`` (C = 2**20 above any cpu, S = 2**40
above any memory in MB, N the number of hosts; spread leaves the disk term out), so one int
orders hosts by free disks, then free cpu, then free memory, then name. Keys live in sorted
lists cut into chunks (``SortedKeys``): one list per static signature (the labels and networks a
node needs, filtered once per call) and one per signature and role set, from which a host drops
out as soon as a node of a shared role lands on it.

Binpack is disk-aware: in each disk level from the node's own disk count up it bisects to the
smallest key with enough cpu and memory (one more bisect skips a cpu level short of memory;
typed and named disks are checked host by host), takes that level's first adequate host, and
of the first ``_WINDOW`` levels with one it picks the host whose cpu and disk shares left after
the node are closest, so neither runs out while the other strands. Spread walks down from the
largest (cpu, memory) key. Lists are built on first use and patched on every placement.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from itertools import count, islice
from operator import attrgetter, eq, lt
from types import MappingProxyType

from .addresses import assign_addresses
from .keys import SortedKeys
from .model import (
    DiskDemand,
    FreeDisk,
    HostView,
    NetworkView,
    NodeDemand,
    NodePlacement,
    NoFit,
    Placement,
    Shortage,
)

STRATEGIES = ("binpack", "spread")
ANTI_AFFINITY_MODES = ("soft", "hard")

_NO_NETWORKS: Mapping[str, NetworkView] = MappingProxyType({})
_NO_ROLES: frozenset[str] = frozenset()
_NOBODY: Mapping[str, Collection[str]] = MappingProxyType({})
_HOST_NAME = attrgetter("name")
_MEM_CAP = 1 << 40
_CPU_CAP = 1 << 20  # cores; more counts as 2**20 - 1
# Binpack weighs the first adequate host of this many disk levels (measured: 1 admits 0.92-0.98
# of first-fit's instances on bench/placement.py, 4 reaches 1.00-1.04, 8 reaches 1.04-1.06).
_WINDOW = 4
_HOST_ORDER = attrgetter("name", "id")
_DISK_ORDER = attrgetter("size", "name", "id")
_STATE_WORDS = {"drain": "drained", "down": "down"}

# Labels a host must carry and networks it must be attached to: what filters a node statically.
_Signature = tuple[tuple[tuple[str, str], ...], frozenset[str]]


def place(
    nodes: Sequence[NodeDemand],
    hosts: Sequence[HostView],
    networks: Mapping[str, NetworkView] = _NO_NETWORKS,
    *,
    strategy: str = "binpack",
    anti_affinity: str = "soft",
    beside: Mapping[str, Collection[str]] = _NOBODY,
) -> Placement:
    """Place every node on a host with its disks and addresses, or raise NoFit saying why.

    ``beside`` (host name -> roles) are the instance's nodes already placed, when nodes join
    a running instance: anti-affinity keeps the new nodes off the hosts of their roles.
    """
    return _place(
        nodes, hosts, networks, strategy, anti_affinity, empty=False, states=("up",), beside=beside
    )


def feasible(
    nodes: Sequence[NodeDemand],
    hosts: Sequence[HostView],
    networks: Mapping[str, NetworkView] = _NO_NETWORKS,
    *,
    strategy: str = "binpack",
    anti_affinity: str = "soft",
    states: Collection[str] = ("up",),
) -> list[Shortage]:
    """Return why the nodes could never fit on these hosts even empty, or [] if they could.

    Capacity is taken from the totals, every disk counts as free (``all_disks`` when given) and
    no address as used. ``states`` says which hosts count: pass ("up", "drain", "down") to judge
    the inventory as if every host were back.
    """
    try:
        _place(nodes, hosts, networks, strategy, anti_affinity, empty=True, states=states)
    except NoFit as no_fit:
        return no_fit.shortages
    return []


def _place(
    nodes: Sequence[NodeDemand],
    hosts: Sequence[HostView],
    networks: Mapping[str, NetworkView],
    strategy: str,
    anti_affinity: str,
    *,
    empty: bool,
    states: Collection[str],
    beside: Mapping[str, Collection[str]] = _NOBODY,
) -> Placement:
    """Run one placement on a cluster built for it."""
    _check_modes(strategy, anti_affinity)
    cluster = _Cluster(hosts, strategy, empty=empty, states=states)
    return _place_on(cluster, nodes, networks, anti_affinity, beside)


def _check_modes(strategy: str, anti_affinity: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    if anti_affinity not in ANTI_AFFINITY_MODES:
        modes = ", ".join(ANTI_AFFINITY_MODES)
        raise ValueError(f"anti_affinity must be one of {modes}, not {anti_affinity!r}")


def _place_on(
    cluster: _Cluster,
    nodes: Sequence[NodeDemand],
    networks: Mapping[str, NetworkView],
    anti_affinity: str,
    beside: Mapping[str, Collection[str]] = _NOBODY,
) -> Placement:
    """Place one instance on ``cluster``: addresses in node order, then hosts biggest first."""
    digested = [_Node(demand) for demand in nodes]
    if len({node.name for node in digested}) != len(digested):
        raise ValueError("node names must be unique within an instance")
    for host, roles in beside.items():
        slot = cluster._slot_named(host)
        if slot >= 0:
            for role in roles:
                cluster.role_slots.setdefault(role, set()).add(slot)
    nics, problems = assign_addresses(nodes, networks, ignore_used=cluster.empty)
    spots, shortage = cluster.place_all(digested, hard=anti_affinity == "hard")
    if shortage is not None:
        seen = {(p.node, p.dimension) for p in problems}
        if (shortage.node, shortage.dimension) not in seen:
            problems.insert(0, shortage)
    if problems:
        raise NoFit(problems)
    placed: dict[str, NodePlacement] = {}
    for node in digested:
        slot, disks = spots[node.name]
        view = cluster.hosts[slot]
        placed[node.name] = NodePlacement(node.name, view.name, view.id, disks, nics[node.name])
    return Placement(placed)


class Scheduler:
    """Place instance after instance on one inventory, keeping the indexes between them.

    ``place()`` builds its indexes from the host views on every call, which costs about as
    much as placing a few dozen nodes. A scheduler builds them once and keeps every placement
    it returns, as a queue drain does: each instance lands on what the ones before it left.
    A placement that fails (NoFit) is undone and leaves the scheduler as it was. The host and
    network views given are never changed; ``place(nodes, hosts)`` after committing each
    result into them places exactly as this does.
    """

    def __init__(
        self,
        hosts: Sequence[HostView],
        networks: Mapping[str, NetworkView] = _NO_NETWORKS,
        *,
        strategy: str = "binpack",
    ) -> None:
        _check_modes(strategy, "soft")
        self._cluster = _Cluster(hosts, strategy, empty=False, states=("up",), persistent=True)
        # Copies: the addresses this scheduler hands out are used for the next instance.
        self._networks = {name: replace(view) for name, view in networks.items()}

    def place(
        self,
        nodes: Sequence[NodeDemand],
        *,
        anti_affinity: str = "soft",
        beside: Mapping[str, Collection[str]] = _NOBODY,
    ) -> Placement:
        """Place every node and keep the placement, or raise NoFit and keep nothing;
        ``beside`` as for ``place()``."""
        _check_modes("binpack", anti_affinity)
        cluster = self._cluster
        cluster.begin()
        try:
            placement = _place_on(cluster, nodes, self._networks, anti_affinity, beside)
        except BaseException:
            cluster.rollback()
            raise
        given: dict[str, set[str]] = {}
        for spot in placement.nodes.values():
            for nic in spot.nics.values():
                given.setdefault(nic.network, set()).add(nic.address)
        for name, addresses in given.items():
            view = self._networks[name]
            view.used = view.used | addresses
        return placement


class _Node:
    """One node's demand, digested once for the hot loop."""

    __slots__ = (
        "cpu",
        "demand",
        "mem",
        "name",
        "named",
        "ndisks",
        "pin",
        "plain",
        "roles",
        "signature",
        "simple_disks",
        "type_counts",
        "typed",
    )
    named: tuple[DiskDemand, ...]
    typed: tuple[DiskDemand, ...]
    plain: tuple[DiskDemand, ...]
    type_counts: tuple[tuple[str, int], ...]

    def __init__(self, demand: NodeDemand) -> None:
        self.demand = demand
        self.name = demand.name
        if not isinstance(demand.cpu, int) or not isinstance(demand.mem, int):
            raise ValueError(f"node {demand.name}: cpu and mem must be integers (cores, MB)")
        if demand.cpu < 0 or demand.mem < 0:
            raise ValueError(f"node {demand.name}: cpu and mem must not be negative")
        self.cpu = demand.cpu
        self.mem = demand.mem
        self.pin = demand.pin
        roles = demand.roles
        self.roles = roles if type(roles) is frozenset else frozenset(roles)
        nics = demand.nics
        if len(nics) > 1 and len({nic.device for nic in nics}) != len(nics):
            raise ValueError(f"node {demand.name}: nic devices must be unique")
        networks = frozenset([nic.network for nic in nics]) if nics else frozenset()
        constraints = tuple(sorted(demand.constraints)) if demand.constraints else ()
        self.signature: _Signature = (constraints, networks)
        disks = demand.disks
        self.ndisks = len(disks)
        if not disks:
            self.named = self.typed = self.plain = ()
            self.type_counts = ()
            self.simple_disks = True
            return
        if len(disks) > 1 and len({d.name for d in disks}) != len(disks):
            raise ValueError(f"node {demand.name}: disk names must be unique")
        self.named = tuple(d for d in disks if d.host_disk is not None)
        self.typed = tuple(d for d in disks if d.host_disk is None and d.type is not None)
        self.plain = tuple(d for d in disks if d.host_disk is None and d.type is None)
        counts: dict[str, int] = {}
        for kind in (d.type for d in self.typed if d.type is not None):
            counts[kind] = counts.get(kind, 0) + 1
        self.type_counts = tuple(counts.items())
        # Untyped, unnamed disks only need a count: the hot loop checks them without the disks.
        self.simple_disks = not self.named and not self.typed

    def describe_disks(self) -> str:
        """Return the disk demand in words, e.g. "3 disks (2 ssd, host disk sdb)"."""
        parts = [f"{count} {kind}" for kind, count in self.type_counts]
        parts += [f"host disk {d.host_disk}" for d in self.named]
        word = "disk" if self.ndisks == 1 else "disks"
        return f"{self.ndisks} {word}" + (f" ({', '.join(parts)})" if parts else "")


def _place_order(node: _Node) -> tuple[bool, int, int, int]:
    """Return the sort key that places pinned nodes, then the biggest, first."""
    return (node.pin is None, -node.cpu, -node.mem, -node.ndisks)


def _in_name_order(hosts: Sequence[HostView]) -> list[HostView]:
    """Return the hosts ordered by name, then id; cheaply when they come in that order."""
    names = list(map(_HOST_NAME, hosts))
    if all(map(lt, names, islice(names, 1, None))):
        return list(hosts)
    ordered = sorted(hosts, key=_HOST_NAME)
    # Sorting on names alone is twice as fast as on (name, id); redo it if names repeat.
    names = list(map(_HOST_NAME, ordered))
    if any(map(eq, names, islice(names, 1, None))):
        ordered.sort(key=_HOST_ORDER)
    return ordered


class _Cluster:
    """The hosts as one call (or one Scheduler) tracks them: free capacity by slot, and the
    sorted indexes."""

    def __init__(
        self,
        hosts: Sequence[HostView],
        strategy: str,
        *,
        empty: bool,
        states: Collection[str],
        persistent: bool = False,
    ) -> None:
        ordered = _in_name_order(hosts)
        self.spread = strategy == "spread"
        if self.spread:
            # Spread walks down from the largest key; reversed slots keep ties in name order.
            ordered.reverse()
        self.hosts = ordered
        self.empty = empty
        self.states = frozenset(states)
        self.n = n = max(len(ordered), 1)
        # Keys are (cpu * s + mem) * n + slot, so s must exceed any memory figure: a fixed
        # 2**40 MB saves a pass over the hosts, and memory beyond it counts as 2**40 - 1.
        self.s = _MEM_CAP
        self.sn = _MEM_CAP * n
        self.ln = _CPU_CAP * self.sn
        self.levels = not self.spread
        self.keys: dict[int, int] = {}  # slot -> key, for the slots this call changed
        self.nfree = [-1] * n  # free disks by slot, counted when first needed
        # Indexes are built on first use, from the capacity as it is then, and kept up to date.
        self.floors: dict[_Signature, tuple[int, int, int]] = {}  # smallest node by signature
        self.indexes: dict[tuple[_Signature, frozenset[str]], SortedKeys] = {}
        self.live: list[tuple[SortedKeys, frozenset[str]]] = []
        self.role_slots: dict[str, set[int]] = {}  # role -> slots holding a node of that role
        self.disk_lists: dict[int, dict[str, list[FreeDisk]]] = {}  # built when first needed
        self.best = self._best_spread if self.spread else self._best_binpack
        self.placed = 0
        self.wanted_types: frozenset[str] = frozenset()
        self._by_name: dict[str, int] | None = None
        # Kept between calls (a Scheduler): no floors, since a later instance may have smaller
        # nodes; and each take is logged so that a gang that fails part-way can be undone.
        self.persistent = persistent
        self.undo: list[tuple[int, int, int, int, dict[str, FreeDisk]]] = []

    def begin(self) -> None:
        """Start the next instance on a kept cluster: anti-affinity only spans one instance."""
        self.indexes = {key: index for key, index in self.indexes.items() if not key[1]}
        self.live = [(index, roles) for index, roles in self.live if not roles]
        self.role_slots = {}
        self.placed = 0
        self.undo = []

    def rollback(self) -> None:
        """Give back what this instance's nodes took, newest first."""
        for slot, old, new, nfree, disks in reversed(self.undo):
            for index, roles in self.live:
                if not roles and index.discard(new):
                    index.add(old)
            self.keys[slot] = old
            self.nfree[slot] = nfree
            if disks:
                lists = self.disk_lists[slot]
                for disk in disks.values():
                    insort(lists[disk.type], disk, key=_DISK_ORDER)
        self.undo = []  # the failed instance's role indexes go at the next begin()

    # -- the hot path -------------------------------------------------------------------------

    def place_all(
        self, nodes: list[_Node], *, hard: bool
    ) -> tuple[dict[str, tuple[int, dict[str, FreeDisk]]], Shortage | None]:
        """Place the nodes biggest first; return slot and disks by node, or the first shortage."""
        spots: dict[str, tuple[int, dict[str, FreeDisk]]] = {}
        self.wanted_types = frozenset(
            d.type for node in nodes for d in node.demand.disks if d.type is not None
        )
        floors = self.floors
        for node in () if self.persistent else nodes:
            if node.pin is None:
                low = floors.get(node.signature)
                if low is None:
                    floors[node.signature] = (node.cpu, node.mem, node.ndisks)
                elif node.cpu < low[0] or node.mem < low[1] or node.ndisks < low[2]:
                    floors[node.signature] = (
                        node.cpu if node.cpu < low[0] else low[0],
                        node.mem if node.mem < low[1] else low[1],
                        node.ndisks if node.ndisks < low[2] else low[2],
                    )
        for node in sorted(nodes, key=_place_order):
            if node.pin is not None:
                slot = self._slot_named(node.pin)
                if slot < 0 or not self._fits(slot, node):
                    return spots, self._explain_pin(node, slot)
                if hard and self._crowded(slot, node.roles):
                    return spots, self._explain_crowded(node, [slot])
                key = self._key(slot)
            else:
                key = self.best(self._index(node.signature, node.roles), node)
                if key < 0 and node.roles:
                    anywhere = self.best(self._index(node.signature, _NO_ROLES), node)
                    if hard and anywhere >= 0:
                        return spots, self._explain_crowded(node, None)
                    key = anywhere
                if key < 0:
                    return spots, self._explain(node)
            spots[node.name] = (key % self.n, self._take(key, node))
        return spots, None

    def _best_binpack(self, index: SortedKeys, node: _Node) -> int:
        """Return the key of the best adequate host in the first WINDOW disk levels; else -1."""
        n, sn, ln = self.n, self.sn, self.ln
        need = node.mem * n  # within a cpu level, keys at or above level + need have the memory
        if node.mem >= self.s or node.cpu >= _CPU_CAP:
            return -1
        nd, simple = node.ndisks, node.simple_disks
        chunks, maxes = index.chunks, index.maxes
        last = len(maxes)
        if not last:
            return -1
        top = maxes[-1] // ln
        low = node.cpu * sn + need
        found: list[int] = []
        level = nd
        while level <= top:
            base = level * ln
            target = base + low  # the smallest key of this disk level that may fit
            limit = base + ln
            c = bisect_left(maxes, target)
            hit = -1
            while c < last:
                chunk = chunks[c]
                i = bisect_left(chunk, target)
                end = len(chunk)
                while i < end:
                    key = chunk[i]
                    if key >= limit:
                        break
                    rest = key % sn
                    if rest >= need:
                        if simple or self._disks_fit(rest % n, node):
                            hit = key
                            break
                        i += 1
                    else:
                        target = key - rest + need
                        i = bisect_left(chunk, target, i + 1)
                else:
                    c += 1
                    if c < last and maxes[c] < target:
                        c = bisect_left(maxes, target, c)
                    continue
                break
            if hit >= 0:
                found.append(hit)
                if len(found) >= _WINDOW:
                    break
                level = hit // ln + 1
            elif c >= last:
                break
            else:
                level = chunk[i] // ln  # the next level present
        return self._choose(found, node) if found else -1

    def _choose(self, found: list[int], node: _Node) -> int:
        """Return the candidate whose cpu and disk shares left after the node are closest.

        A host whose cpu runs out with disks to spare strands those disks (and the reverse
        strands cpu), so the node goes where what it leaves stays in proportion; ties go to the
        smallest key: fewest free disks, then least cpu, memory, name.
        """
        if len(found) == 1:
            return found[0]
        n, sn, ln, hosts, empty = self.n, self.sn, self.ln, self.hosts, self.empty
        cpu, nd = node.cpu, node.ndisks
        best, best_score = found[0], float("inf")
        for key in found:  # in key order, so the first of equal scores wins
            host = hosts[key % n]
            cpu_total = host.cpu_total or 1
            disk_total = (
                host.disk_total if not empty and host.disk_total else len(_disk_source(host, empty))
            ) or 1
            left = (key // sn % _CPU_CAP - cpu) / cpu_total - (key // ln - nd) / disk_total
            score = left if left >= 0 else -left
            if score < best_score:
                best, best_score = key, score
        return best

    def _best_spread(self, index: SortedKeys, node: _Node) -> int:
        """Return the key of the host left with the most free cpu, then memory; else -1."""
        n, sn = self.n, self.sn
        need = node.mem * n
        if node.mem >= self.s:
            return -1
        nfree, nd, simple = self.nfree, node.ndisks, node.simple_disks
        chunks, maxes = index.chunks, index.maxes
        floor = node.cpu * sn  # keys below have too little cpu
        ceiling = -1  # after a jump: keys must be below this; -1 while there was none
        c = len(chunks) - 1
        while c >= 0:
            chunk = chunks[c]
            i = len(chunk) - 1 if ceiling < 0 else bisect_left(chunk, ceiling) - 1
            while i >= 0:
                key = chunk[i]
                if key < floor:
                    return -1
                rest = key % sn
                if rest >= need:
                    if not nd:
                        return key
                    slot = rest % n
                    free = nfree[slot]
                    if free < 0:
                        free = self._count_disks(slot)
                    if free >= nd and (simple or self._disks_fit(slot, node)):
                        return key
                    i -= 1
                else:
                    # Walking down a cpu level memory only shrinks: jump below the level.
                    ceiling = key - rest
                    i = bisect_left(chunk, ceiling, 0, i) - 1
            c -= 1
            if ceiling >= 0 and c >= 0 and chunks[c][0] >= ceiling:
                c = min(c, bisect_left(maxes, ceiling))
        return -1

    def _take(self, key: int, node: _Node) -> dict[str, FreeDisk]:
        """Give the node the capacity of the host whose key is ``key``; return its disks."""
        n = self.n
        slot = key % n
        new = key - node.cpu * self.sn - node.mem * n
        if self.levels:
            new -= node.ndisks * self.ln
        self.keys[slot] = new
        roles = node.roles
        for index, index_roles in self.live:
            if index.discard(key) and (
                not roles or not index_roles or roles.isdisjoint(index_roles)
            ):
                index.add(new)
            # else a node of a shared role is here now: anti-affinity keeps the host out.
        for role in roles:
            self.role_slots.setdefault(role, set()).add(slot)
        self.placed += 1
        nfree = self.nfree[slot]
        if not node.ndisks:
            if self.persistent:
                self.undo.append((slot, key, new, nfree, {}))
            return {}
        self.nfree[slot] = self._count_disks(slot) - node.ndisks
        disks = self._take_disks(slot, node)
        if self.persistent:
            self.undo.append((slot, key, new, nfree, disks))
        return disks

    def _key(self, slot: int) -> int:
        """Return the slot's current key (its free capacity and slot, as the indexes hold it)."""
        key = self.keys.get(slot)
        return self._given_key(slot) if key is None else key

    def _given_key(self, slot: int) -> int:
        """Return the slot's key from the capacity the host view gives."""
        host = self.hosts[slot]
        cpu, mem = self._capacity(host)
        cpu = min(max(cpu, 0), _CPU_CAP - 1)
        key = (cpu * self.s + min(max(mem, 0), self.s - 1)) * self.n + slot
        if self.levels:
            key += len(_disk_source(host, self.empty)) * self.ln
        return key

    def _capacity(self, host: HostView) -> tuple[int, int]:
        """Return the cpu and memory the host offers to this call, as given."""
        if self.empty:
            return host.cpu_total, host.mem_total
        return host.cpu_free, host.mem_free

    def _free(self, slot: int) -> tuple[int, int]:
        """Return the slot's free cpu and memory now (after this call's earlier nodes)."""
        key = self._key(slot)
        return key // self.sn % _CPU_CAP, key % self.sn // self.n

    def _count_disks(self, slot: int) -> int:
        """Return the slot's free disk count, counting it on first use."""
        free = self.nfree[slot]
        if free < 0:
            host = self.hosts[slot]
            disks = host.all_disks if self.empty and host.all_disks is not None else host.disks
            free = self.nfree[slot] = len(disks)
        return free

    def _sorted_keys(self, signature: _Signature) -> list[int]:
        """Return the sorted keys of the usable hosts with the signature's labels and networks."""
        constraints, networks = signature
        s, n, usable, empty = self.s, self.n, self.states, self.empty
        top, cap = s - 1, _CPU_CAP
        dl = self.ln if self.levels else 0
        # Capacity only shrinks during a call: a host below the smallest node now stays so
        # (a Scheduler keeps no floors: a later instance may have smaller nodes).
        # The floors are never negative, so they also keep out overcommitted hosts.
        low_cpu, low_mem, low_disks = self.floors.get(signature, (0, 0, 0))
        rows = zip(count(), self.hosts)
        if not constraints and not networks and not low_disks:
            keys = [
                ((c if c < cap else cap - 1) * s + (m if m < s else top)) * n
                + slot
                + (len(host.all_disks if empty and host.all_disks is not None else host.disks) * dl)
                for slot, host in rows
                if (c := host.cpu_total if empty else host.cpu_free) >= low_cpu
                and (m := host.mem_total if empty else host.mem_free) >= low_mem
                and host.state in usable
            ]
        else:
            wanted = frozenset(constraints)
            attached = networks.issubset
            count_disks = self._count_disks
            # A set of (label, value) pairs <= dict.items() is one C-level subset test.
            keys = [
                ((c if c < cap else cap - 1) * s + (m if m < s else top)) * n
                + slot
                + (len(host.all_disks if empty and host.all_disks is not None else host.disks) * dl)
                for slot, host in rows
                if (c := host.cpu_total if empty else host.cpu_free) >= low_cpu
                and (m := host.mem_total if empty else host.mem_free) >= low_mem
                and host.state in usable
                and (not networks or attached(host.networks))
                and (not wanted or wanted <= host.labels.items())
                and (not low_disks or count_disks(slot) >= low_disks)
            ]
        if self.keys:
            # The listing read capacity as given; put the nodes placed since into it (this
            # call's, or a Scheduler's earlier instances').
            stale = {self._given_key(slot) for slot in self.keys}
            keys = [key for key in keys if key not in stale]
            sn, hosts = self.sn, self.hosts
            for slot, key in self.keys.items():
                host = hosts[slot]
                if (
                    key // sn % _CPU_CAP >= low_cpu
                    and key % sn // n >= low_mem
                    and host.state in usable
                    and _matches(host, constraints, networks)
                    and (not low_disks or self._count_disks(slot) >= low_disks)
                ):
                    keys.append(key)
        keys.sort()
        return keys

    def _index(self, signature: _Signature, roles: frozenset[str]) -> SortedKeys:
        """Return the index of the hosts a node with this signature and roles may take."""
        index = self.indexes.get((signature, roles))
        if index is None:
            if roles:
                # Copying the signature's index is a few memcpy; building keys is a Python loop.
                index = self._index(signature, _NO_ROLES).copy()
                crowded: set[int] = set()
                for role in roles:
                    crowded |= self.role_slots.get(role, set())
                for slot in crowded:
                    index.discard(self._key(slot))
            else:
                index = SortedKeys(self._sorted_keys(signature))
            self.indexes[(signature, roles)] = index
            self.live.append((index, roles))
        return index

    # -- disks --------------------------------------------------------------------------------

    def _disk_lists(self, slot: int) -> dict[str, list[FreeDisk]]:
        """Return the slot's free disks by type, smallest first, building them on first use."""
        lists = self.disk_lists.get(slot)
        if lists is None:
            host = self.hosts[slot]
            source = host.all_disks if self.empty and host.all_disks is not None else host.disks
            ordered = sorted(source, key=_DISK_ORDER)
            kinds = {disk.type for disk in ordered}
            if len(kinds) == 1:
                lists = {kinds.pop(): ordered}
            else:
                lists = {kind: [d for d in ordered if d.type == kind] for kind in sorted(kinds)}
            self.disk_lists[slot] = lists
        return lists

    def _disks_fit(self, slot: int, node: _Node) -> bool:
        """Say whether the slot's free disks can serve every disk of the node."""
        lists = self._disk_lists(slot)
        if node.named:
            return _named_disks(lists, node) is not None
        # A plain loop: all() over a generator costs twice as much on this hot path.
        for kind, wanted in node.type_counts:  # noqa: SIM110
            if len(lists.get(kind, ())) < wanted:
                return False
        return True

    def _take_disks(self, slot: int, node: _Node) -> dict[str, FreeDisk]:
        """Remove the node's disks from the slot's free lists and return them by disk name."""
        lists = self._disk_lists(slot)
        chosen: dict[str, FreeDisk] = {}
        if node.named:
            named = _named_disks(lists, node)
            assert named is not None  # the filter checked the disks before choosing the host
            for demand, disk in zip(node.named, named, strict=True):
                lists[disk.type].remove(disk)
                chosen[demand.name] = disk
        for demand in node.typed:
            assert demand.type is not None  # typed holds the disks that name a type
            chosen[demand.name] = lists[demand.type].pop(0)
        wanted = self.wanted_types
        for demand in node.plain:
            # Untyped disks come from the type the host has most of, that no node here asks
            # for by type, smallest first: taking the last ssd would starve an "ssd" node.
            best: list[FreeDisk] | None = None
            best_rank = (True, 0, "")
            for kind, lst in lists.items():
                if lst:
                    rank = (kind in wanted, -len(lst), kind)
                    if best is None or rank < best_rank:
                        best, best_rank = lst, rank
            assert best is not None  # the filter counted the free disks
            chosen[demand.name] = best.pop(0)
        return {d.name: chosen[d.name] for d in node.demand.disks}

    def _usable_disks(self, slot: int, node: _Node) -> int:
        """Return how many of the node's disks the slot could serve (for explanations)."""
        lists = self._disk_lists(slot)
        named = sum(
            1
            for demand in node.named
            if any(
                d.name == demand.host_disk and (demand.type is None or d.type == demand.type)
                for lst in lists.values()
                for d in lst
            )
        )
        typed = sum(min(count, len(lists.get(kind, ()))) for kind, count in node.type_counts)
        left = max(self._count_disks(slot) - named - typed, 0)
        return named + typed + min(len(node.plain), left)

    # -- checks outside the hot path: pins and explanations -----------------------------------

    def _slot_named(self, name: str) -> int:
        """Return the slot of the host called ``name`` (lowest id if repeated), or -1."""
        if self._by_name is None:
            slots = range(len(self.hosts))
            # Slots run in name order, backwards for spread; the first seen has the lowest id.
            by_name: dict[str, int] = {}
            for slot in reversed(slots) if self.spread else slots:
                by_name.setdefault(self.hosts[slot].name, slot)
            self._by_name = by_name
        return self._by_name.get(name, -1)

    def _fits(self, slot: int, node: _Node) -> bool:
        """Say whether the node fits the slot now, anti-affinity aside."""
        host = self.hosts[slot]
        constraints, networks = node.signature
        return (
            host.state in self.states
            and _matches(host, constraints, networks)
            and _covers(self._free(slot), node)
            and (not node.ndisks or self._count_disks(slot) >= node.ndisks)
            and (not node.ndisks or self._disks_fit(slot, node))
        )

    def _crowded(self, slot: int, roles: frozenset[str]) -> bool:
        """Say whether the slot already holds a node sharing one of ``roles``."""
        return any(slot in self.role_slots.get(role, ()) for role in roles)

    def _after(self) -> str:
        """Return the words that say capacity was counted after the instance's earlier nodes."""
        if not self.placed:
            return ""
        word = "node" if self.placed == 1 else "nodes"
        return f" after this instance's {self.placed} earlier {word}"

    def _explain(self, node: _Node) -> Shortage:
        """Return why no host takes the node: the first dimension in which all hosts fall short."""
        name = node.name
        hosts, states = self.hosts, self.states
        up = [slot for slot in range(len(hosts)) if hosts[slot].state in states]
        if not up:
            return Shortage(name, "hosts", 1, 0, f"node {name} finds no up host {_census(hosts)}")
        constraints, networks = node.signature
        qualifier = ""
        if constraints:
            wanted = ", ".join(f"{k}={v}" for k, v in constraints)
            up = [slot for slot in up if _matches(hosts[slot], constraints, frozenset())]
            if not up:
                message = f"node {name} needs a host labelled {wanted}; no up host is"
                return Shortage(name, "labels", wanted, 0, message)
            qualifier += f" labelled {wanted}"
        if networks:
            wanted = ", ".join(sorted(networks))
            up = [slot for slot in up if networks.issubset(hosts[slot].networks)]
            if not up:
                message = f"node {name} needs a host attached to {wanted}; no up host{qualifier} is"
                return Shortage(name, "networks", wanted, 0, message)
            qualifier += f" on {wanted}"
        after = self._after()
        free = "" if self.empty else " free"
        capacity = {slot: self._free(slot) for slot in up}
        best = max(capacity[slot][0] for slot in up)
        if best < node.cpu:
            message = (
                f"node {name} needs {node.cpu} cpu;"
                f" the largest{free} on any up host{qualifier} is {best}{after}"
            )
            return Shortage(name, "cpu", node.cpu, best, message)
        up = [slot for slot in up if capacity[slot][0] >= node.cpu]
        best = max(capacity[slot][1] for slot in up)
        if best < node.mem:
            message = (
                f"node {name} needs {node.mem} MB of memory; the largest{free} on any up"
                f" host{qualifier} with {node.cpu} cpu{free} is {best} MB{after}"
            )
            return Shortage(name, "mem", node.mem, best, message)
        up = [slot for slot in up if capacity[slot][1] >= node.mem]
        if node.ndisks:
            fitting = [slot for slot in up if self._fits(slot, node)]
            if not fitting:
                best = max(self._usable_disks(slot, node) for slot in up)
                message = (
                    f"node {name} needs {node.describe_disks()}; the most any up host{qualifier}"
                    f" with {node.cpu} cpu and {node.mem} MB{free} can give is {best}{after}"
                )
                return Shortage(name, "disks", node.ndisks, best, message)
            up = fitting
        return self._explain_crowded(node, up)

    def _explain_crowded(self, node: _Node, slots: list[int] | None) -> Shortage:
        """Return the hard anti-affinity shortage of a node whose fitting hosts are all taken."""
        roles = ", ".join(sorted(node.roles)) or "none"
        if slots is not None and len(slots) == 1 and node.pin is not None:
            where = f"its pinned host {node.pin} already holds"
        else:
            where = "every host that fits it already holds"
        message = f"node {node.name} (roles {roles}): {where} a node of the same role"
        return Shortage(node.name, "anti-affinity", 1, 0, message)

    def _explain_pin(self, node: _Node, slot: int) -> Shortage:
        """Return why the node's pinned host cannot take it."""
        name, pin = node.name, node.pin
        assert pin is not None
        if slot < 0:
            message = f"node {name} is pinned to host {pin}, which does not exist"
            return Shortage(name, "pin", pin, "missing", message)
        host = self.hosts[slot]
        lead = f"node {name} is pinned to host {pin}"
        if host.state not in self.states:
            state = _STATE_WORDS.get(host.state, host.state)
            return Shortage(name, "pin", pin, host.state, f"{lead}, which is {state}")
        constraints, networks = node.signature
        for key, value in constraints:
            if host.labels.get(key) != value:
                has = host.labels.get(key)
                message = f"{lead}, whose label {key} is {has!r}, not {value!r}"
                return Shortage(name, "labels", f"{key}={value}", f"{key}={has}", message)
        missing = sorted(networks - frozenset(host.networks))
        if missing:
            message = f"{lead}, which is not attached to {', '.join(missing)}"
            return Shortage(name, "networks", ", ".join(missing), "detached", message)
        after = self._after()
        free = "" if self.empty else " free"
        cpu, mem = self._free(slot)
        if cpu < node.cpu:
            message = f"{lead}, which has {cpu} cpu{free}; it needs {node.cpu}{after}"
            return Shortage(name, "cpu", node.cpu, cpu, message)
        if mem < node.mem:
            message = f"{lead}, which has {mem} MB{free}; it needs {node.mem} MB{after}"
            return Shortage(name, "mem", node.mem, mem, message)
        usable = self._usable_disks(slot, node)
        total = f" of {host.disk_total}" if host.disk_total else ""
        message = (
            f"{lead}, which has {self._count_disks(slot)}{total} disks{free} and can give"
            f" {usable} of {node.describe_disks()}{after}"
        )
        return Shortage(name, "disks", node.ndisks, usable, message)


def _covers(free: tuple[int, int], node: _Node) -> bool:
    """Say whether free (cpu, memory) covers the node's."""
    return free[0] >= node.cpu and free[1] >= node.mem


def _matches(
    host: HostView, constraints: tuple[tuple[str, str], ...], networks: frozenset[str]
) -> bool:
    """Say whether the host carries every constraint label and is on every network."""
    labels = host.labels
    for key, value in constraints:
        if labels.get(key) != value:
            return False
    return not networks or networks.issubset(host.networks)


def _census(hosts: list[HostView]) -> str:
    """Return the inventory's host states in words, e.g. "(3 hosts: 2 drained, 1 down)"."""
    if not hosts:
        return "(the inventory has no hosts)"
    counts: dict[str, int] = {}
    for host in hosts:
        counts[host.state] = counts.get(host.state, 0) + 1
    parts = ", ".join(f"{c} {_STATE_WORDS.get(s, s)}" for s, c in sorted(counts.items()))
    return f"({len(hosts)} hosts: {parts})"


def _named_disks(lists: dict[str, list[FreeDisk]], node: _Node) -> list[FreeDisk] | None:
    """Return the host disks the node names, if all are free and leave room for its typed ones."""
    found: list[FreeDisk] = []
    for demand in node.named:
        disk = next(
            (
                d
                for kind, lst in lists.items()
                if demand.type is None or demand.type == kind
                for d in lst
                if d.name == demand.host_disk and all(d is not f for f in found)
            ),
            None,
        )
        if disk is None:
            return None
        found.append(disk)
    for kind, wanted in node.type_counts:
        if len(lists.get(kind, ())) - sum(1 for d in found if d.type == kind) < wanted:
            return None
    return found


def _disk_source(host: HostView, empty: bool) -> list[FreeDisk]:
    """Return the disks the host offers to a call: all of them when judging an empty cluster."""
    return host.all_disks if empty and host.all_disks is not None else host.disks
