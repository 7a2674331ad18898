"""Unit tests of the placement engine: plain data in, plain data out."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random
from pathlib import Path

import pytest

from bigdata_paas.placement import (
    DiskDemand,
    FreeDisk,
    HostView,
    NetworkView,
    NicDemand,
    NodeDemand,
    NoFit,
    Placement,
    Scheduler,
    feasible,
    place,
)
from bigdata_paas.placement.keys import CHUNK, SortedKeys

ROOT = Path(__file__).resolve().parents[2]
_disk_ids = iter(range(1, 10**9))
_host_ids = iter(range(1, 10**9))


def host(
    name: str,
    cpu: int = 8,
    mem: int = 16384,
    disks: tuple[tuple[str, str, int], ...] = (("sdb", "hdd", 1000), ("sdc", "hdd", 1000)),
    *,
    cpu_free: int | None = None,
    mem_free: int | None = None,
    state: str = "up",
    networks: tuple[str, ...] = (),
    labels: dict[str, str] | None = None,
    host_id: int | None = None,
) -> HostView:
    """Return a host with ``disks`` free, given as (name, type, size)."""
    free = [FreeDisk(next(_disk_ids), n, t, s) for n, t, s in disks]
    return HostView(
        id=next(_host_ids) if host_id is None else host_id,
        name=name,
        cpu_total=cpu,
        mem_total=mem,
        cpu_free=cpu if cpu_free is None else cpu_free,
        mem_free=mem if mem_free is None else mem_free,
        disks=free,
        networks=frozenset(networks),
        labels=labels or {},
        state=state,
        disk_total=len(free),
    )


def node(
    name: str = "n0",
    cpu: int = 1,
    mem: int = 1024,
    *,
    disks: tuple[DiskDemand, ...] = (),
    nics: tuple[NicDemand, ...] = (),
    roles: tuple[str, ...] = (),
    pin: str | None = None,
    constraints: tuple[tuple[str, str], ...] = (),
) -> NodeDemand:
    """Return a node demand."""
    return NodeDemand(name, cpu, mem, disks, nics, frozenset(roles), pin, constraints)


def disks(*types: str | None) -> tuple[DiskDemand, ...]:
    """Return one disk demand per type, named disk0, disk1..."""
    return tuple(DiskDemand(f"disk{i}", t) for i, t in enumerate(types))


def pool(
    cidr: str = "10.0.0.0/24", gateway: str | None = "10.0.0.1", name: str = "data", **kw: object
) -> dict[str, NetworkView]:
    """Return a networks mapping with one pool."""
    return {name: NetworkView(name, cidr, gateway, "br0", **kw)}  # type: ignore[arg-type]


def hosts_of(placement: Placement) -> dict[str, str]:
    """Return node name -> host name."""
    return {name: spot.host for name, spot in placement.nodes.items()}


# -- fit, one dimension at a time -------------------------------------------------------------

FITS = [
    pytest.param([host("h1", cpu=2), host("h2", cpu=8)], [node(cpu=4)], {}, "h2", id="cpu"),
    pytest.param(
        [host("h1", mem=2048), host("h2", mem=65536)], [node(mem=4096)], {}, "h2", id="mem"
    ),
    pytest.param(
        [host("h1"), host("h2", disks=(("a", "hdd", 1),) * 3)],
        [node(disks=disks(None, None, None))],
        {},
        "h2",
        id="disk-count",
    ),
    pytest.param(
        [host("h1"), host("h2", disks=(("sdb", "hdd", 1), ("sdf", "ssd", 1)))],
        [node(disks=disks("ssd"))],
        {},
        "h2",
        id="disk-type",
    ),
    pytest.param(
        [host("h1"), host("h2", disks=(("sdb", "hdd", 1), ("sdx", "hdd", 1)))],
        [node(disks=(DiskDemand("data", host_disk="sdx"),))],
        {},
        "h2",
        id="named-host-disk",
    ),
    pytest.param([host("h1"), host("h2", cpu=64)], [node(pin="h1")], {}, "h1", id="pin"),
    pytest.param(
        [host("h1", labels={"rack": "r1"}), host("h2", cpu=64, labels={"rack": "r2"})],
        [node(constraints=(("rack", "r2"),))],
        {},
        "h2",
        id="labels",
    ),
    pytest.param(
        [host("h1"), host("h2", cpu=64, networks=("data",))],
        [node(nics=(NicDemand("eth0", "data"),))],
        pool(),
        "h2",
        id="networks",
    ),
    pytest.param(
        [host("h1", state="drain"), host("h2", state="down"), host("h3", cpu=64)],
        [node()],
        {},
        "h3",
        id="drained-and-down-skipped",
    ),
    pytest.param(
        [host("h1", cpu_free=0), host("h2", cpu=64)], [node()], {}, "h2", id="full-host-skipped"
    ),
]


@pytest.mark.parametrize(("hosts", "nodes", "networks", "expected"), FITS)
def test_fits_on_the_only_adequate_host(hosts, nodes, networks, expected):
    assert set(hosts_of(place(nodes, hosts, networks)).values()) == {expected}


def test_named_host_disk_is_that_disk():
    hosts = [host("h1", disks=(("sdb", "ssd", 10), ("sdc", "ssd", 99)))]
    demand = (DiskDemand("data", "ssd", host_disk="sdc"), DiskDemand("log", "ssd"))
    spot = place([node(disks=demand)], hosts).nodes["n0"]
    assert {name: d.name for name, d in spot.disks.items()} == {"data": "sdc", "log": "sdb"}


def test_disks_smallest_adequate_and_untyped_spare_the_wanted_type():
    hosts = [host("h1", disks=(("sdb", "hdd", 900), ("sdc", "hdd", 300), ("sdd", "ssd", 100)))]
    nodes = [node("a", disks=disks(None)), node("b", disks=disks("ssd", "hdd"))]
    spots = place(nodes, hosts).nodes
    # The untyped disk does not take the only ssd, which node b asks for by type.
    assert spots["a"].disks["disk0"].name == "sdb"
    assert {d.name for d in spots["b"].disks.values()} == {"sdd", "sdc"}


# -- no fit, one dimension at a time ----------------------------------------------------------

NO_FITS = [
    pytest.param(
        [host("h1", cpu=8), host("h2", cpu=4)], [node("big", cpu=16)], {}, ("cpu", 16, 8), id="cpu"
    ),
    pytest.param(
        [host("h1", mem=4096, cpu=2), host("h2", cpu=1, mem=99999)],
        [node("big", cpu=2, mem=8192)],
        {},
        ("mem", 8192, 4096),
        id="mem-among-hosts-with-the-cpu",
    ),
    pytest.param(
        [host("h1")], [node("big", disks=disks(None, None, None))], {}, ("disks", 3, 2), id="disks"
    ),
    pytest.param([host("h1")], [node("big", disks=disks("ssd"))], {}, ("disks", 1, 0), id="type"),
    pytest.param(
        [host("h1")],
        [node("big", disks=(DiskDemand("d", host_disk="sdz"),))],
        {},
        ("disks", 1, 0),
        id="named-host-disk",
    ),
    pytest.param(
        [host("h1")], [node("big", pin="nope")], {}, ("pin", "nope", "missing"), id="pin-missing"
    ),
    pytest.param(
        [host("h1", state="down"), host("h2")],
        [node("big", pin="h1")],
        {},
        ("pin", "h1", "down"),
        id="pin-down",
    ),
    pytest.param(
        [host("h1", state="drain"), host("h2")],
        [node("big", pin="h1")],
        {},
        ("pin", "h1", "drain"),
        id="pin-drained",
    ),
    pytest.param(
        [host("h1", cpu=4), host("h2", cpu=64)],
        [node("big", cpu=8, pin="h1")],
        {},
        ("cpu", 8, 4),
        id="pin-too-small",
    ),
    pytest.param(
        [host("h1", labels={"rack": "r1"})],
        [node("big", constraints=(("rack", "r9"),))],
        {},
        ("labels", "rack=r9", 0),
        id="labels",
    ),
    pytest.param(
        [host("h1", networks=("data",))],
        [node("big", nics=(NicDemand("eth0", "nope"),))],
        pool(),
        ("networks", "nope", "unknown"),
        id="unknown-network",
    ),
    pytest.param(
        [host("h1")],
        [node("big", nics=(NicDemand("eth0", "data"),))],
        pool(),
        ("networks", "data", 0),
        id="no-host-on-network",
    ),
    pytest.param(
        [host("h1", networks=("data",))],
        [node("a", nics=(NicDemand("eth0", "data"),)), node("big", nics=(NicDemand("e", "data"),))],
        pool("10.0.0.0/30"),
        ("addresses", 2, 1),
        id="addresses-exhausted",
    ),
    pytest.param(
        [host("h1", networks=("data",))],
        [node("big", nics=(NicDemand("eth0", "data", "10.9.9.9"),))],
        pool(),
        ("addresses", "10.9.9.9", "outside"),
        id="static-outside-pool",
    ),
    pytest.param(
        [host("h1", networks=("data",))],
        [node("big", nics=(NicDemand("eth0", "data", "10.0.0.7"),))],
        pool(used=frozenset({"10.0.0.7"})),
        ("addresses", "10.0.0.7", "in use"),
        id="static-taken",
    ),
    pytest.param(
        [host("h1", networks=("data",))],
        [node("big", nics=(NicDemand("eth0", "data", "10.0.0.1"),))],
        pool(),
        ("addresses", "10.0.0.1", "gateway"),
        id="static-gateway",
    ),
    pytest.param(
        [host("h1", networks=("data",))],
        [node("big", nics=(NicDemand("eth0", "data", "10.0.0.9"),))],
        pool(reserved=frozenset({"10.0.0.9"})),
        ("addresses", "10.0.0.9", "reserved"),
        id="static-reserved",
    ),
    pytest.param(
        [host("h1", networks=("data",))],
        [
            node("a", nics=(NicDemand("eth0", "data", "10.0.0.9"),)),
            node("big", nics=(NicDemand("eth0", "data", "10.0.0.9"),)),
        ],
        pool(),
        ("addresses", "10.0.0.9", "requested twice"),
        id="static-twice",
    ),
    pytest.param(
        [host("h1", networks=("data",))],
        [node("big", nics=(NicDemand("eth0", "data", "10.0.0.255"),))],
        pool(),
        ("addresses", "10.0.0.255", "not a host address"),
        id="static-broadcast",
    ),
    pytest.param(
        [host("h1", state="down"), host("h2", state="drain")],
        [node("big")],
        {},
        ("hosts", 1, 0),
        id="no-up-host",
    ),
]


@pytest.mark.parametrize(("hosts", "nodes", "networks", "expected"), NO_FITS)
def test_no_fit_names_the_short_dimension(hosts, nodes, networks, expected):
    with pytest.raises(NoFit) as caught:
        place(nodes, hosts, networks)
    shortage = caught.value.shortages[0]
    assert (shortage.dimension, shortage.needed, shortage.available) == expected
    assert shortage.node == "big"
    summary = str(caught.value)
    assert "\n" not in summary
    assert "big" in summary and expected[0] in summary
    if isinstance(expected[1], int) and isinstance(expected[2], int):
        assert f"{expected[1] - expected[2]} missing" in summary


def test_cpu_message_reads_well():
    with pytest.raises(NoFit) as caught:
        place([node("slave3", cpu=8)], [host("h1", cpu=4)])
    assert caught.value.shortages[0].message == (
        "node slave3 needs 8 cpu; the largest free on any up host is 4"
    )
    assert str(caught.value).endswith("(cpu: 4 missing)")


def test_shortage_counts_the_instance_own_earlier_nodes():
    with pytest.raises(NoFit) as caught:
        place([node("a", cpu=6), node("b", cpu=4)], [host("h1", cpu=8)])
    shortage = caught.value.shortages[0]
    assert (shortage.node, shortage.dimension, shortage.available) == ("b", "cpu", 2)
    assert "after this instance's 1 earlier node" in shortage.message


def test_no_fit_survives_pickling():
    with pytest.raises(NoFit) as caught:
        place([node(cpu=99)], [host("h1")])
    again = pickle.loads(pickle.dumps(caught.value))
    assert again.shortages == caught.value.shortages
    assert str(again) == str(caught.value)


# -- anti-affinity ----------------------------------------------------------------------------

AFFINITY = [
    pytest.param(
        [host("h1", cpu=8), host("h2", cpu=8)],
        "soft",
        {"a": "h1", "b": "h2"},
        id="soft-spreads-when-it-can",
    ),
    pytest.param([host("h1", cpu=8)], "soft", {"a": "h1", "b": "h1"}, id="soft-falls-back"),
    pytest.param(
        [host("h1", cpu=8), host("h2", cpu=8)], "hard", {"a": "h1", "b": "h2"}, id="hard-spreads"
    ),
    pytest.param(
        [host("h1", cpu=8), host("h2", cpu=1)], "hard", None, id="hard-fails-rather-than-share"
    ),
]


@pytest.mark.parametrize(("hosts", "mode", "expected"), AFFINITY)
def test_anti_affinity(hosts, mode, expected):
    nodes = [node("a", cpu=2, roles=("datanode",)), node("b", cpu=2, roles=("datanode", "x"))]
    if expected is None:
        with pytest.raises(NoFit) as caught:
            place(nodes, hosts, anti_affinity=mode)
        assert caught.value.shortages[0].dimension == "anti-affinity"
    else:
        assert hosts_of(place(nodes, hosts, anti_affinity=mode)) == expected


def test_nodes_without_a_shared_role_pack_together():
    hosts = [host("h1", cpu=8), host("h2", cpu=8)]
    nodes = [node("a", cpu=2, roles=("master",)), node("b", cpu=2, roles=("worker",)), node("c")]
    assert set(hosts_of(place(nodes, hosts, anti_affinity="hard")).values()) == {"h1"}


def test_hard_anti_affinity_on_a_pinned_host():
    nodes = [node("a", roles=("w",), pin="h1"), node("b", roles=("w",), pin="h1")]
    with pytest.raises(NoFit) as caught:
        place(nodes, [host("h1")], anti_affinity="hard")
    assert caught.value.shortages[0].dimension == "anti-affinity"
    assert len(place(nodes, [host("h1")]).nodes) == 2  # soft shares


# -- scoring ----------------------------------------------------------------------------------

SCORING = [
    pytest.param("binpack", [(4, 8192), (8, 8192), (16, 8192)], "h0", id="binpack-least-cpu"),
    pytest.param("spread", [(4, 8192), (8, 8192), (16, 8192)], "h2", id="spread-most-cpu"),
    pytest.param("binpack", [(8, 8192), (8, 4096), (8, 65536)], "h1", id="binpack-then-mem"),
    pytest.param("spread", [(8, 8192), (8, 4096), (8, 65536)], "h2", id="spread-then-mem"),
    pytest.param("binpack", [(8, 8192), (8, 8192), (8, 8192)], "h0", id="binpack-tie-by-name"),
    pytest.param("spread", [(8, 8192), (8, 8192), (8, 8192)], "h0", id="spread-tie-by-name"),
]


@pytest.mark.parametrize(("strategy", "sizes", "expected"), SCORING)
def test_strategy_picks(strategy, sizes, expected):
    hosts = [host(f"h{i}", cpu=c, mem=m) for i, (c, m) in enumerate(sizes)]
    random.Random(3).shuffle(hosts)  # the input order must not matter
    assert hosts_of(place([node(cpu=2, mem=2048)], hosts, strategy=strategy)) == {"n0": expected}


def _hdds(count: int) -> tuple[tuple[str, str, int], ...]:
    return tuple((f"sd{chr(98 + i)}", "hdd", 1000) for i in range(count))


DISK_AWARE = [
    # The old rule (least free cpu) took h1 and stranded 6 of its 8 disks behind zero cpu.
    pytest.param(
        [("h1", 8, 2, 8), ("h2", 8, 4, 4)],
        node(cpu=2, disks=disks(None, None)),
        "h2",
        id="two-disks-where-shares-stay-even",
    ),
    # A diskless node takes the host with no disk to spare rather than one whose disks it strands.
    pytest.param(
        [("h1", 4, 4, 4), ("h2", 8, 8, 0)],
        node(cpu=4),
        "h2",
        id="diskless-spares-disks",
    ),
    # A node that fills a host's cpu goes where it also takes the last disks.
    pytest.param(
        [("h1", 8, 8, 8), ("h2", 8, 8, 2)],
        node(cpu=8, disks=disks(None, None)),
        "h2",
        id="fills-both-dimensions",
    ),
    # Equal shares left (none on either): the fewer free disks win, the disk-rich host waits.
    pytest.param(
        [("h1", 16, 16, 8), ("h2", 8, 8, 4)],
        node(cpu=4, disks=disks(None, None)),
        "h2",
        id="tie-to-fewest-free-disks",
    ),
]


@pytest.mark.parametrize(("shapes", "demand", "expected"), DISK_AWARE)
def test_binpack_is_disk_aware(shapes, demand, expected):
    hosts = [
        host(name, cpu=total, cpu_free=free, disks=_hdds(count))
        for name, total, free, count in shapes
    ]
    assert hosts_of(place([demand], hosts)) == {"n0": expected}


def test_disk_aware_binpack_admits_the_instance_the_old_rule_stranded():
    # Least free cpu, then name, put the diskless node on h1 and left the disk node nowhere.
    hosts = [host("h1", cpu=4, disks=_hdds(4)), host("h2", cpu=4, disks=())]
    first, second = [node("a", cpu=4)], [node("b", cpu=4, disks=disks(None, None))]
    placement = place(first, hosts)
    assert hosts_of(placement) == {"a": "h2"}
    _commit(placement, first, hosts, {})
    assert hosts_of(place(second, hosts)) == {"b": "h1"}


def test_spread_ignores_free_disks():
    hosts = [host("h1", cpu=8, disks=_hdds(8)), host("h2", cpu=16, disks=_hdds(2))]
    assert hosts_of(place([node(disks=disks(None))], hosts, strategy="spread")) == {"n0": "h2"}


def test_binpack_fills_one_host_and_spread_uses_all():
    hosts = [host("h1", cpu=8), host("h2", cpu=8), host("h3", cpu=8)]
    nodes = [node(f"n{i}", cpu=2) for i in range(3)]
    assert set(hosts_of(place(nodes, hosts)).values()) == {"h1"}
    assert set(hosts_of(place(nodes, hosts, strategy="spread")).values()) == {"h1", "h2", "h3"}


def test_bigger_nodes_first_but_given_order_returned():
    # Placed in the given order, "small" would take h1 and "big" would not fit anywhere.
    hosts = [host("h1", cpu=4), host("h2", cpu=2)]
    nodes = [node("small", cpu=2), node("big", cpu=4)]
    placement = place(nodes, hosts)
    assert list(placement.nodes) == ["small", "big"]
    assert hosts_of(placement) == {"small": "h2", "big": "h1"}


def test_pinned_nodes_go_first():
    hosts = [host("h1", cpu=4), host("h2", cpu=64)]
    nodes = [node("free", cpu=4), node("pinned", cpu=2, pin="h1")]
    assert hosts_of(place(nodes, hosts)) == {"free": "h2", "pinned": "h1"}


# -- gang, purity, determinism ----------------------------------------------------------------


def test_gang_places_nothing_and_changes_nothing_when_one_node_fails():
    hosts = [host("h1", cpu=4, networks=("data",)), host("h2", cpu=4, networks=("data",))]
    networks = pool(used=frozenset({"10.0.0.2"}))
    nodes = [node(f"n{i}", cpu=2, nics=(NicDemand("eth0", "data"),)) for i in range(4)]
    nodes.append(node("too-big", cpu=5))
    before = copy.deepcopy((hosts, networks, nodes))
    with pytest.raises(NoFit) as caught:
        place(nodes, hosts, networks)
    assert [s.node for s in caught.value.shortages] == ["too-big"]
    assert (hosts, networks, nodes) == before


def test_inputs_unchanged_after_success():
    hosts = [host("h1", networks=("data",))]
    networks = pool()
    nodes = [node(disks=disks(None), nics=(NicDemand("eth0", "data"),))]
    before = copy.deepcopy((hosts, networks, nodes))
    place(nodes, hosts, networks)
    assert (hosts, networks, nodes) == before


def test_deterministic_whatever_the_host_order():
    rng = random.Random(11)
    hosts = [
        host(f"h{i:02d}", cpu=rng.choice([4, 8]), mem=rng.choice([8192, 16384]), host_id=i)
        for i in range(30)
    ]
    nodes = [node(f"n{i}", cpu=rng.randint(1, 4), roles=("w",)) for i in range(20)]
    first = place(nodes, hosts)
    for _ in range(3):
        rng.shuffle(hosts)
        assert place(nodes, hosts) == first


def test_duplicate_names_tie_by_id():
    hosts = [host("same", host_id=7), host("same", host_id=3)]
    assert place([node()], hosts).nodes["n0"].host_id == 3
    assert place([node(pin="same")], hosts).nodes["n0"].host_id == 3


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="strategy"):
        place([node()], [host("h1")], strategy="random")
    with pytest.raises(ValueError, match="anti_affinity"):
        place([node()], [host("h1")], anti_affinity="never")
    with pytest.raises(ValueError, match="unique"):
        place([node("a"), node("a")], [host("h1")])


# -- addresses --------------------------------------------------------------------------------


def test_lowest_free_address_skips_used_reserved_gateway_and_statics():
    networks = pool("10.0.0.0/28", used=frozenset({"10.0.0.2"}), reserved=frozenset({"10.0.0.3"}))
    nodes = [
        node("a", nics=(NicDemand("eth0", "data"),)),
        node("b", nics=(NicDemand("eth0", "data"), NicDemand("eth1", "data"))),
        node("c", nics=(NicDemand("eth0", "data", "10.0.0.5"),)),
    ]
    spots = place(nodes, [host("h1", networks=("data",))], networks).nodes
    got = {(n, dev): a.address for n, s in spots.items() for dev, a in s.nics.items()}
    assert got == {
        ("a", "eth0"): "10.0.0.4",
        ("b", "eth0"): "10.0.0.6",  # .5 is c's static address, claimed before any dynamic one
        ("b", "eth1"): "10.0.0.7",
        ("c", "eth0"): "10.0.0.5",
    }
    eth0 = spots["a"].nics["eth0"]
    assert (eth0.network, eth0.netmask, eth0.prefixlen, eth0.gateway, eth0.bridge) == (
        "data",
        "255.255.255.240",
        28,
        "10.0.0.1",
        "br0",
    )


POOLS = [
    pytest.param("10.0.0.0/30", None, ["10.0.0.1", "10.0.0.2"], id="v4-no-gateway"),
    pytest.param("10.0.0.0/31", None, ["10.0.0.0", "10.0.0.1"], id="v4-point-to-point"),
    pytest.param("10.0.0.8/29", "10.0.0.9", ["10.0.0.10", "10.0.0.11"], id="v4-offset"),
    pytest.param("10.0.0.250/23", None, ["10.0.0.1", "10.0.0.2"], id="v4-host-bits-set"),
    pytest.param("fd00::/126", "fd00::1", ["fd00::2", "fd00::3"], id="v6"),
]


@pytest.mark.parametrize(("cidr", "gateway", "expected"), POOLS)
def test_pool_shapes(cidr, gateway, expected):
    nodes = [node(f"n{i}", nics=(NicDemand("eth0", "data"),)) for i in range(2)]
    spots = place(nodes, [host("h1", networks=("data",))], pool(cidr, gateway)).nodes
    assert [spots[f"n{i}"].nics["eth0"].address for i in range(2)] == expected


def test_large_pool_walks_past_thousands_of_used_addresses():
    used = frozenset(f"10.1.{i >> 8}.{i & 255}" for i in range(1, 40000))
    networks = pool("10.1.0.0/16", "10.1.255.254", used=used)
    nodes = [node(f"n{i}", nics=(NicDemand("eth0", "data"),)) for i in range(3)]
    spots = place(nodes, [host("h1", cpu=64, networks=("data",))], networks).nodes
    assert [spots[f"n{i}"].nics["eth0"].address for i in range(3)] == [
        "10.1.156.64",
        "10.1.156.65",
        "10.1.156.66",
    ]


def test_addresses_are_given_in_node_order_not_placement_order():
    nodes = [
        node("master0", cpu=1, nics=(NicDemand("eth0", "data"),)),
        node("slave0", cpu=4, nics=(NicDemand("eth0", "data"),)),
    ]
    spots = place(nodes, [host("h1", networks=("data",))], pool()).nodes
    assert spots["master0"].nics["eth0"].address == "10.0.0.2"
    assert spots["slave0"].nics["eth0"].address == "10.0.0.3"


# -- feasible ---------------------------------------------------------------------------------

FEASIBLE = [
    pytest.param(
        dict(cpu=8, cpu_free=0, mem_free=0, disks=()), [], id="full-cluster-could-fit-later"
    ),
    pytest.param(dict(cpu=2), [("cpu", 4, 2)], id="too-small-cluster"),
    pytest.param(dict(mem=2048), [("mem", 4096, 2048)], id="too-little-memory"),
]


@pytest.mark.parametrize(("shape", "expected"), FEASIBLE)
def test_feasible_judges_an_empty_cluster(shape, expected):
    full = host("h1", networks=("data",), **shape)
    full.all_disks = [FreeDisk(90, "sdb", "hdd", 1), FreeDisk(91, "sdc", "ssd", 1)]
    nodes = [node("a", cpu=4, mem=4096, disks=disks("ssd"), nics=(NicDemand("e", "data"),))]
    networks = pool("10.0.0.0/30", None, used=frozenset({"10.0.0.1", "10.0.0.2"}))
    found = [(s.dimension, s.needed, s.available) for s in feasible(nodes, [full], networks)]
    assert found == expected


def test_feasible_counts_only_up_hosts_unless_told():
    hosts = [host("h1", state="down")]
    assert [s.dimension for s in feasible([node()], hosts)] == ["hosts"]
    assert feasible([node()], hosts, states=("up", "drain", "down")) == []


def test_feasible_wording_speaks_of_totals():
    [shortage] = feasible([node("x", cpu=99)], [host("h1", cpu=8, cpu_free=1)])
    assert shortage.message == "node x needs 99 cpu; the largest on any up host is 8"


# -- property: random workloads never overcommit ----------------------------------------------


def _random_cluster(rng: random.Random) -> tuple[list[HostView], dict[str, NetworkView]]:
    hosts = []
    for i in range(rng.randint(5, 40)):
        kinds = [rng.choice(["hdd", "ssd", "nvme"]) for _ in range(rng.randint(0, 6))]
        hosts.append(
            host(
                f"h{i:02d}",
                cpu=rng.choice([2, 4, 8, 16]),
                mem=rng.choice([4096, 8192, 32768]),
                disks=tuple(
                    (f"sd{chr(98 + j)}", k, rng.choice([1, 2, 4])) for j, k in enumerate(kinds)
                ),
                state=rng.choice(["up"] * 8 + ["drain", "down"]),
                networks=tuple(n for n in ("data", "mgmt") if rng.random() < 0.8),
                labels={"rack": rng.choice(["r1", "r2"])},
            )
        )
    networks = {
        "data": NetworkView("data", "10.0.0.0/26", "10.0.0.1", reserved=frozenset({"10.0.0.2"})),
        "mgmt": NetworkView("mgmt", "192.168.0.0/27", None),
    }
    return hosts, networks


def _random_instance(rng: random.Random, serial: int) -> list[NodeDemand]:
    nodes = []
    for i in range(rng.randint(1, 8)):
        nics = tuple(
            NicDemand(f"eth{j}", net)
            for j, net in enumerate(("data", "mgmt"))
            if rng.random() < 0.5
        )
        nodes.append(
            node(
                f"i{serial}n{i}",
                cpu=rng.randint(1, 6),
                mem=rng.choice([512, 1024, 4096, 8192]),
                disks=disks(
                    *(rng.choice([None, None, "hdd", "ssd"]) for _ in range(rng.randint(0, 3)))
                ),
                nics=nics,
                roles=rng.choice([(), ("w",), ("w", "m")]),
                constraints=(("rack", "r1"),) if rng.random() < 0.2 else (),
            )
        )
    return nodes


def _commit(placement: Placement, nodes, hosts, networks) -> None:
    by_name = {h.name: h for h in hosts}
    demand = {n.name: n for n in nodes}
    for name, spot in placement.nodes.items():
        h = by_name[spot.host]
        h.cpu_free -= demand[name].cpu
        h.mem_free -= demand[name].mem
        taken = {d.id for d in spot.disks.values()}
        h.disks = [d for d in h.disks if d.id not in taken]
        for nic in spot.nics.values():
            view = networks[nic.network]
            view.used = view.used | {nic.address}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("strategy", ["binpack", "spread"])
def test_random_workloads_never_overcommit(seed, strategy):
    rng = random.Random(seed)
    hosts, networks = _random_cluster(rng)
    totals = {h.name: (h.cpu_total, h.mem_total) for h in hosts}
    disks_owned = {d.id: h.name for h in hosts for d in h.disks}
    disks_seen: set[int] = set()
    addresses_seen: set[tuple[str, str]] = set()
    placed = rejected = 0
    for serial in range(30):
        nodes = _random_instance(rng, serial)
        before = copy.deepcopy(hosts)
        try:
            placement = place(nodes, hosts, networks, strategy=strategy)
        except NoFit as no_fit:
            rejected += 1
            assert no_fit.shortages and all(s.message for s in no_fit.shortages)
            assert hosts == before
            continue
        assert list(placement.nodes) == [n.name for n in nodes]
        by_name = {h.name: h for h in hosts}
        for n in nodes:
            spot = placement.nodes[n.name]
            h = by_name[spot.host]
            assert h.state == "up"
            assert all(h.labels.get(k) == v for k, v in n.constraints)
            assert {nic.network for nic in n.nics} <= h.networks
            assert set(spot.disks) == {d.name for d in n.disks}
            for demand in n.disks:
                got = spot.disks[demand.name]
                assert disks_owned[got.id] == h.name
                assert demand.type in (None, got.type)
            assert set(spot.nics) == {nic.device for nic in n.nics}
        _commit(placement, nodes, hosts, networks)
        placed += len(nodes)
        for h in hosts:
            assert 0 <= h.cpu_free <= totals[h.name][0], h
            assert 0 <= h.mem_free <= totals[h.name][1], h
        for spot in placement.nodes.values():
            for d in spot.disks.values():
                assert d.id not in disks_seen
                disks_seen.add(d.id)
            for nic in spot.nics.values():
                assert (nic.network, nic.address) not in addresses_seen
                assert nic.address != networks[nic.network].gateway
                assert nic.address not in networks[nic.network].reserved
                addresses_seen.add((nic.network, nic.address))
    # every seed's workload fills its cluster: both outcomes are exercised
    assert placed and rejected


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("strategy", ["binpack", "spread"])
def test_a_scheduler_places_as_place_does_after_each_commit(seed, strategy):
    """The kept index against a fresh one per instance: the same hosts, disks and addresses,
    the same rejections with the same reasons, and a rejected gang undone without a trace."""
    rng = random.Random(1000 + seed)
    hosts, networks = _random_cluster(rng)
    given = copy.deepcopy((hosts, networks))
    scheduler = Scheduler(hosts, networks, strategy=strategy)
    outcomes = []
    for serial in range(40):
        nodes = _random_instance(rng, serial)
        mode = rng.choice(["soft", "soft", "hard"])
        if rng.random() < 0.1:  # a pin, sometimes to a host that cannot take the node
            nodes[0] = dataclasses.replace(nodes[0], pin=rng.choice(hosts).name)
        try:
            expected = place(nodes, hosts, networks, strategy=strategy, anti_affinity=mode)
        except NoFit as no_fit:
            with pytest.raises(NoFit) as kept:
                scheduler.place(nodes, anti_affinity=mode)
            assert kept.value.shortages == no_fit.shortages
            outcomes.append("rejected")
            continue
        assert scheduler.place(nodes, anti_affinity=mode) == expected
        _commit(expected, nodes, hosts, networks)
        outcomes.append("placed")
    assert "placed" in outcomes and "rejected" in outcomes, outcomes
    assert copy.deepcopy((hosts, networks)) != given  # the test's own views moved on
    assert all(view.used == networks[name].used for name, view in scheduler._networks.items())


def test_a_scheduler_leaves_the_views_it_was_given_alone():
    hosts = [host("a", cpu=4, networks=("lan",)), host("b", cpu=4, networks=("lan",))]
    networks = {"lan": NetworkView("lan", "10.0.0.0/29", "10.0.0.1")}
    before = copy.deepcopy((hosts, networks))
    scheduler = Scheduler(hosts, networks)
    nic = (NicDemand("eth0", "lan"),)
    first = scheduler.place([node("n0", cpu=4, nics=nic)])
    second = scheduler.place([node("n0", cpu=4, nics=nic)])
    assert (hosts, networks) == before
    assert {first.nodes["n0"].host, second.nodes["n0"].host} == {"a", "b"}
    assert first.nodes["n0"].nics["eth0"].address != second.nodes["n0"].nics["eth0"].address
    with pytest.raises(NoFit):
        scheduler.place([node("n0", cpu=1)])


def test_a_rejected_gang_gives_back_every_node_it_had_placed():
    # Two nodes fit on "a", the third fits nowhere: after the rejection the first two's cpu
    # and disks are free again, so an instance needing all of "a" still fits.
    hosts = [host("a", cpu=4, disks=(("sdb", "ssd", 1), ("sdc", "hdd", 1)))]
    scheduler = Scheduler(hosts)
    with pytest.raises(NoFit):
        scheduler.place(
            [
                node("n0", cpu=2, disks=disks("ssd")),
                node("n1", cpu=2, disks=disks(None)),
                node("n2", cpu=8),
            ]
        )
    whole = scheduler.place([node("n0", cpu=4, disks=disks("ssd", "hdd"))])
    assert {d.name for d in whole.nodes["n0"].disks.values()} == {"sdb", "sdc"}


def _oracle(nodes, hosts, strategy):
    """Place as the engine does, by brute force; return hosts by node and the node that failed."""
    order = sorted(hosts, key=lambda h: (h.name, h.id))
    free = {h.id: [h.cpu_free, h.mem_free] for h in order}
    counts = {h.id: {} for h in order}
    for h in order:
        for d in h.disks:
            counts[h.id][d.type] = counts[h.id].get(d.type, 0) + 1
    wanted = {d.type for n in nodes for d in n.disks if d.type is not None}
    crowd: dict[str, set[int]] = {}
    result = {}
    for n in sorted(nodes, key=lambda n: (n.pin is None, -n.cpu, -n.mem, -len(n.disks))):
        need: dict[str, int] = {}
        for d in n.disks:
            if d.type is not None:
                need[d.type] = need.get(d.type, 0) + 1

        def fits(h, n=n, need=need):
            c = counts[h.id]
            return (
                h.state == "up"
                and free[h.id][0] >= n.cpu
                and free[h.id][1] >= n.mem
                and sum(c.values()) >= len(n.disks)
                and all(c.get(t, 0) >= k for t, k in need.items())
                and all(h.labels.get(k) == v for k, v in n.constraints)
            )

        fitting = [h for h in order if fits(h)]
        if not fitting:
            return result, n.name
        apart = [h for h in fitting if not any(h.id in crowd.get(r, ()) for r in n.roles)]
        pool_ = apart or fitting
        rank = {h.id: i for i, h in enumerate(order)}
        if strategy == "binpack":
            best = _binpack_choice(pool_, n, free, counts, rank)
        else:
            best = min(pool_, key=lambda h: (-free[h.id][0], -free[h.id][1], rank[h.id]))
        free[best.id][0] -= n.cpu
        free[best.id][1] -= n.mem
        c = counts[best.id]
        for d in n.disks:
            if d.type is not None:
                c[d.type] -= 1
        for d in n.disks:
            if d.type is None:
                kind = min((t for t in c if c[t]), key=lambda t: (t in wanted, -c[t], t))
                c[kind] -= 1
        for r in n.roles:
            crowd.setdefault(r, set()).add(best.id)
        result[n.name] = best.name
    return result, None


def _binpack_choice(pool_, n, free, counts, rank, window=8):
    """Binpack by brute force: the first host (by cpu, mem, name) of each free-disk level, of
    the first ``window`` levels the one whose cpu and disk shares left are closest."""
    disks_free = {h.id: sum(counts[h.id].values()) for h in pool_}
    levels: dict[int, object] = {}
    for h in sorted(pool_, key=lambda h: (free[h.id][0], free[h.id][1], rank[h.id])):
        levels.setdefault(disks_free[h.id], h)
    firsts = [levels[level] for level in sorted(levels)][:window]

    def imbalance(h):
        cpu_left = (free[h.id][0] - n.cpu) / (h.cpu_total or 1)
        disks_left = (disks_free[h.id] - len(n.disks)) / (h.disk_total or len(h.disks) or 1)
        return abs(cpu_left - disks_left)

    return min(firsts, key=imbalance)  # min keeps the first (fewest free disks) of equals


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("strategy", ["binpack", "spread"])
def test_index_matches_brute_force(seed, strategy):
    # Enough hosts to span several index chunks; capacity left varies as in a used cluster.
    rng = random.Random(seed)
    hosts = []
    for i in range(rng.randint(300, 900)):
        cpu = rng.choice([4, 8, 16])
        mem = rng.choice([8192, 16384, 65536])
        hosts.append(
            host(
                f"h{rng.randrange(10**6):06d}",
                cpu=cpu,
                mem=mem,
                cpu_free=rng.randint(0, cpu),
                mem_free=rng.choice([0, 1024, 4096, mem]),
                disks=tuple(("d", rng.choice(["hdd", "ssd"]), 1) for _ in range(rng.randint(0, 4))),
                state=rng.choice(["up"] * 9 + ["down"]),
                labels={"zone": rng.choice("ab")},
                host_id=i,
            )
        )
    nodes = [
        node(
            f"n{i}",
            cpu=rng.randint(1, 8),
            mem=rng.choice([512, 2048, 8192]),
            disks=disks(*(rng.choice([None, "ssd", "hdd"]) for _ in range(rng.randint(0, 3)))),
            roles=rng.choice([(), ("w",), ("m", "w"), ("m",)]),
            constraints=(("zone", "a"),) if rng.random() < 0.3 else (),
        )
        for i in range(rng.choice([40, 150, 400]))
    ]
    expected, failed = _oracle(nodes, hosts, strategy)
    if failed is None:
        assert hosts_of(place(nodes, hosts, strategy=strategy)) == expected
    else:
        with pytest.raises(NoFit) as caught:
            place(nodes, hosts, strategy=strategy)
        assert caught.value.shortages[0].node == failed


def test_sorted_keys_stay_sorted_through_splits_and_emptied_chunks():
    rng = random.Random(5)
    start = sorted(rng.sample(range(10**6), 700))
    keys, mirror = SortedKeys(start), set(start)
    for step in range(5000):
        if step % 250 == 0:
            present = sorted(mirror) or [0]
        key = rng.randrange(10**6) if rng.random() < 0.5 else rng.choice(present)
        if key in mirror and rng.random() < 0.6:
            assert keys.discard(key)
            mirror.discard(key)
        elif key not in mirror:
            assert not keys.discard(key)
            keys.add(key)
            mirror.add(key)
    assert list(keys) == sorted(mirror) and len(keys) == len(mirror)
    assert keys.maxes == [chunk[-1] for chunk in keys.chunks]
    assert all(0 < len(chunk) <= 2 * CHUNK for chunk in keys.chunks)
    twin = keys.copy()
    twin.add(-1)
    assert -1 not in list(keys)


# -- the benchmark runs -----------------------------------------------------------------------
