"""Hand out network addresses from pools: statics checked, dynamics lowest free first."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from itertools import chain, filterfalse

from .model import AddressAssignment, NetworkView, NodeDemand, Shortage

_OCTETS = tuple(str(i) for i in range(256))


@lru_cache(maxsize=2048)
def _ipv4_block(block: int) -> tuple[str, ...]:
    """Return the 256 addresses of the IPv4 /24 numbered ``block`` (address >> 8) as text."""
    head = f"{block >> 16}.{(block >> 8) & 255}.{block & 255}."
    return tuple([head + octet for octet in _OCTETS])


def _as_set(addresses: Iterable[str]) -> frozenset[str] | set[str]:
    """Return ``addresses`` as a set, so that membership is a hash lookup."""
    if isinstance(addresses, (set, frozenset)):
        return addresses
    return frozenset(addresses)


def _canonical(text: str | None) -> str | None:
    """Return ``text`` as canonical address text, or unchanged when it is no address."""
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


class Pool:
    """One network's usable addresses as seen by one placement call.

    Static addresses are claimed first, then dynamic ones come lowest first from a lazy
    walk of the range: a /16 is never materialized, and the walk runs in C (filterfalse over
    cached /24 blocks of text) so that skipping thousands of used addresses stays cheap.
    """

    def __init__(self, view: NetworkView, *, ignore_used: bool = False) -> None:
        self.view = view
        self.net = ipaddress.ip_network(view.cidr, strict=False)
        low = int(self.net.network_address)
        high = int(self.net.broadcast_address)
        if self.net.num_addresses > 2:
            # The network address is never a host; IPv4 also keeps its broadcast address.
            low += 1
            if self.net.version == 4:
                high -= 1
        self.low, self.high = low, high
        self.used = frozenset() if ignore_used else _as_set(view.used)
        self.reserved = _as_set(view.reserved)
        self.gateway = _canonical(view.gateway)
        self.claimed: dict[str, str] = {}  # static address -> node, within this call
        self.handed_out = 0
        self._walk: Iterator[str] | None = None
        self._template = AddressAssignment(
            network=view.name,
            address="",
            netmask=str(self.net.netmask),
            prefixlen=self.net.prefixlen,
            gateway=view.gateway,
            bridge=view.bridge,
        )

    def assignment(self, address: str) -> AddressAssignment:
        """Return the assignment of ``address`` with the pool's netmask, gateway and bridge."""
        t = self._template
        return AddressAssignment(t.network, address, t.netmask, t.prefixlen, t.gateway, t.bridge)

    def claim(self, text: str, node: str) -> tuple[str | None, str, str]:
        """Claim a static address for ``node``: (address, "", "") or (None, state, why not)."""
        name, cidr = self.view.name, self.view.cidr
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return None, "invalid", f"{text!r} is not an IP address"
        canonical = str(address)
        if address.version != self.net.version or address not in self.net:
            return None, "outside", f"{canonical} is outside network {name} ({cidr})"
        if not self.low <= int(address) <= self.high:
            why = f"{canonical} is the network or broadcast address of {name} ({cidr})"
            return None, "not a host address", why
        if canonical == self.gateway:
            return None, "gateway", f"{canonical} is the gateway of network {name}"
        if canonical in self.reserved:
            return None, "reserved", f"{canonical} is reserved in network {name}"
        if canonical in self.used:
            return None, "in use", f"{canonical} is already in use in network {name}"
        holder = self.claimed.get(canonical)
        if holder is not None:
            return None, "requested twice", f"{canonical} is also requested by node {holder}"
        self.claimed[canonical] = node
        return canonical, "", ""

    def next_free(self) -> str | None:
        """Return the lowest address not yet used, reserved, claimed or handed out, or None."""
        if self._walk is None:
            self._walk = self._free_addresses()
        address = next(self._walk, None)
        if address is not None:
            self.handed_out += 1
        return address

    def _free_addresses(self) -> Iterator[str]:
        """Return a lazy iterator over the free addresses, lowest first."""
        if self.net.version == 4:
            walk: Iterator[str] = chain.from_iterable(
                map(self._ipv4_slice, range(self.low >> 8, (self.high >> 8) + 1))
            )
        else:
            walk = map(str, map(ipaddress.IPv6Address, range(self.low, self.high + 1)))
        # Statics are all claimed before the first dynamic address, so this set is final.
        skip = set(self.claimed)
        if self.gateway is not None:
            skip.add(self.gateway)
        for excluded in (self.used, self.reserved, skip):
            if excluded:
                walk = filterfalse(excluded.__contains__, walk)
        return walk

    def _ipv4_slice(self, block: int) -> tuple[str, ...]:
        """Return the addresses of /24 ``block`` that lie within the pool's usable range."""
        start = block << 8
        lo = max(self.low - start, 0)
        hi = min(self.high - start, 255)
        return _ipv4_block(block)[lo : hi + 1]


def assign_addresses(
    nodes: Sequence[NodeDemand],
    networks: Mapping[str, NetworkView],
    *,
    ignore_used: bool = False,
) -> tuple[dict[str, dict[str, AddressAssignment]], list[Shortage]]:
    """Give every nic of every node an address; return them by node and device, and problems.

    Addresses do not depend on hosts, so they are given in the order the nodes were listed:
    master0 gets a lower address than slave0 whatever order the hosts are chosen in.
    """
    pools: dict[str, Pool] = {}
    result: dict[str, dict[str, AddressAssignment]] = {node.name: {} for node in nodes}
    problems: list[Shortage] = []
    dynamic: list[tuple[NodeDemand, str, Pool]] = []
    for node in nodes:
        for nic in node.nics:
            pool = pools.get(nic.network)
            if pool is None:
                view = networks.get(nic.network)
                if view is None:
                    problems.append(
                        Shortage(
                            node.name,
                            "networks",
                            nic.network,
                            "unknown",
                            f"node {node.name} nic {nic.device} names network {nic.network!r},"
                            " which does not exist",
                        )
                    )
                    continue
                pool = pools[nic.network] = Pool(view, ignore_used=ignore_used)
            if nic.address is None:
                dynamic.append((node, nic.device, pool))
                continue
            address, state, why = pool.claim(nic.address, node.name)
            if address is None:
                problems.append(
                    Shortage(
                        node.name,
                        "addresses",
                        nic.address,
                        state,
                        f"node {node.name} nic {nic.device} asks for static address {why}",
                    )
                )
            else:
                result[node.name][nic.device] = pool.assignment(address)
    wanted: dict[str, int] = {}
    for _node, _device, pool in dynamic:
        wanted[pool.view.name] = wanted.get(pool.view.name, 0) + 1
    short: set[str] = set()
    for node, device, pool in dynamic:
        name = pool.view.name
        if name in short:
            continue
        address = pool.next_free()
        if address is None:
            short.add(name)
            free = pool.handed_out
            verb = "is" if free == 1 else "are"
            problems.append(
                Shortage(
                    node.name,
                    "addresses",
                    wanted[name],
                    free,
                    f"node {node.name} nic {device} finds network {name} ({pool.view.cidr})"
                    f" exhausted: the instance needs {wanted[name]} dynamic addresses"
                    f" and only {free} {verb} free",
                )
            )
            continue
        result[node.name][device] = pool.assignment(address)
    return result, problems
