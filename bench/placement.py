"""Benchmark the placement engine against the original system's first-fit; print the figures.

    .venv/bin/python bench/placement.py            # full run, about a minute
    .venv/bin/python bench/placement.py --quick    # small run, a few seconds (smoke test)

1. latency: one big instance onto many heterogeneous hosts, median and p95 of several runs;
2. throughput: instances of 1-50 nodes placed one after another until the first rejection,
   three ways: a Scheduler that keeps its index and placements between instances (as a queue
   drain does); place() on host views into which each result is committed; and first-fit, the
   original system's algorithm, the same way, for reference.
Everything comes from one seeded generator, so both engines see identical hosts and instances.
Only placement calls are timed (a Scheduler's constructor included); building the workload and
committing into host views are not. Hosts come in
name order, as the inventory query lists them (one latency row shows a shuffled inventory).
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
    place,
)


@dataclass(frozen=True)
class Scale:
    """How big each part of the run is."""

    latency_nodes: int
    latency_hosts: int
    latency_runs: int
    used_addresses: int
    throughput_hosts: int


FULL = Scale(
    latency_nodes=1000,
    latency_hosts=10_000,
    latency_runs=11,
    used_addresses=20_000,
    throughput_hosts=2000,
)
QUICK = Scale(
    latency_nodes=100,
    latency_hosts=1000,
    latency_runs=3,
    used_addresses=1000,
    throughput_hosts=200,
)

# -- workload ---------------------------------------------------------------------------------


def make_hosts(rng: random.Random, count: int) -> list[HostView]:
    """Return ``count`` heterogeneous hosts in name order, as the inventory query lists them."""
    hosts = []
    for i in range(count):
        cpu = rng.choice([8, 12, 16, 24, 32, 48, 64])
        mem = rng.choice([32, 48, 64, 96, 128, 192, 256, 384, 512]) * 1024
        disks = [
            FreeDisk(
                id=i * 100 + j,
                name="sd" + chr(ord("b") + j),
                type="ssd" if rng.random() < 0.25 else "hdd",
                size=rng.choice([480, 960, 1920, 4000, 8000]),
            )
            for j in range(rng.randint(2, 24))
        ]
        labels = {"rack": f"r{rng.randrange(40):02d}", "zone": f"z{rng.randrange(4)}"}
        if rng.random() < 0.1:
            labels["gpu"] = "yes"
        roll = rng.random()
        state = "drain" if roll < 0.01 else "down" if roll < 0.02 else "up"
        networks = {"cluster", "storage"} if rng.random() < 0.5 else {"cluster"}
        hosts.append(
            HostView(
                id=i,
                name=f"host{i:05d}",
                cpu_total=cpu,
                mem_total=mem,
                cpu_free=cpu,
                mem_free=mem,
                disks=disks,
                networks=frozenset(networks),
                labels=labels,
                state=state,
                disk_total=len(disks),
            )
        )
    return hosts


def make_instance(
    rng: random.Random, size: int, *, nics: bool, constrained: bool
) -> list[NodeDemand]:
    """Return one instance: a master and workers, 1-8 cpu, 1-32 GB, 0-4 disks some typed."""
    zone = (("zone", f"z{rng.randrange(4)}"),) if constrained else ()
    nodes = []
    for i in range(size):
        disks = tuple(
            DiskDemand(f"disk{j}", type="ssd" if rng.random() < 0.2 else None)
            for j in range(rng.randint(0, 4))
        )
        nodes.append(
            NodeDemand(
                name="master0" if i == 0 else f"worker{i}",
                cpu=rng.randint(1, 8),
                mem=rng.randint(1, 32) * 1024,
                disks=disks,
                nics=(NicDemand("eth0", "cluster"),) if nics else (),
                roles=frozenset({"master"} if i == 0 else {"worker", "datanode"}),
                constraints=zone,
            )
        )
    return nodes


def make_network(used: int) -> NetworkView:
    """Return a /16 pool whose lowest ``used`` addresses are taken."""
    taken = frozenset(f"10.0.{(i + 2) >> 8}.{(i + 2) & 255}" for i in range(used))
    return NetworkView("cluster", "10.0.0.0/16", gateway="10.0.0.1", used=taken)


# -- the baseline: the original system's first-fit ---------------------------------------------


def first_fit(nodes: list[NodeDemand], hosts: list[HostView]) -> list[tuple] | None:
    """Put each node on the first host, in host order, that fits it; None if one fits nowhere."""
    cpu_used: dict[int, int] = {}
    mem_used: dict[int, int] = {}
    taken: set[int] = set()
    placed = []
    for node in nodes:
        for host in hosts:
            if host.state != "up":
                continue
            if host.cpu_free - cpu_used.get(host.id, 0) < node.cpu:
                continue
            if host.mem_free - mem_used.get(host.id, 0) < node.mem:
                continue
            if any(host.labels.get(k) != v for k, v in node.constraints):
                continue
            if any(nic.network not in host.networks for nic in node.nics):
                continue
            chosen = []
            for demand in node.disks:
                for disk in host.disks:
                    if disk.id in taken or disk in chosen:
                        continue
                    if demand.type is None or disk.type == demand.type:
                        chosen.append(disk)
                        break
            if len(chosen) < len(node.disks):
                continue
            cpu_used[host.id] = cpu_used.get(host.id, 0) + node.cpu
            mem_used[host.id] = mem_used.get(host.id, 0) + node.mem
            taken.update(disk.id for disk in chosen)
            placed.append((node, host.name, chosen))
            break
        else:
            return None
    return placed


def engine(nodes: list[NodeDemand], hosts: list[HostView]) -> Placement | None:
    """Place with the engine (binpack, soft anti-affinity); None on NoFit."""
    try:
        return place(nodes, hosts)
    except NoFit:
        return None


def engine_rows(placement: Placement, nodes: list[NodeDemand]) -> list[tuple]:
    """Return the engine's placement as the (node, host name, disks) rows commit() takes."""
    by_name = {node.name: node for node in nodes}
    return [(by_name[p.node], p.host, list(p.disks.values())) for p in placement.nodes.values()]


def first_fit_rows(placed: list[tuple], nodes: list[NodeDemand]) -> list[tuple]:
    """Return first-fit's rows, which are already what commit() takes."""
    return placed


def commit(placed: list[tuple], hosts: dict[str, HostView]) -> None:
    """Subtract the placed nodes' capacity and disks from the host views."""
    for node, host_name, disks in placed:
        host = hosts[host_name]
        host.cpu_free -= node.cpu
        host.mem_free -= node.mem
        if disks:
            gone = {disk.id for disk in disks}
            host.disks = [disk for disk in host.disks if disk.id not in gone]


def per_call(placer, rows):
    """A run where every call sees the host views, into which each result is committed."""

    def start(hosts: list[HostView]):
        by_name = {host.name: host for host in hosts}

        def attempt(nodes: list[NodeDemand]):
            wall, cpu = time.perf_counter(), time.process_time()
            placed = placer(nodes, hosts)
            spent = time.perf_counter() - wall, time.process_time() - cpu
            if placed is not None:
                commit(rows(placed, nodes), by_name)  # not timed: the database's part
            return placed is not None, spent

        return attempt

    return start


def kept(hosts: list[HostView]):
    """A run on one Scheduler, which keeps its indexes and its placements between calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    scheduler = Scheduler(hosts)
    setup = [time.perf_counter() - wall, time.process_time() - cpu]

    def attempt(nodes: list[NodeDemand]):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            scheduler.place(nodes)
            placed = True
        except NoFit:
            placed = False
        spent = time.perf_counter() - wall + setup[0], time.process_time() - cpu + setup[1]
        setup[:] = [0.0, 0.0]  # the constructor counts once, with the first call
        return placed, spent

    return attempt


# -- the runs ---------------------------------------------------------------------------------


def _timed(call, *args, **kwargs) -> tuple[object, float, float]:
    """Call once; return the result, wall and cpu seconds (cpu time shrugs off a busy machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def latency(scale: Scale, seed: int) -> dict[str, tuple[float, float, float]]:
    """Return median and p95 wall ms and median cpu ms of placing one big instance."""
    rng = random.Random(seed)
    hosts = make_hosts(rng, scale.latency_hosts)
    nodes = make_instance(rng, scale.latency_nodes, nics=True, constrained=False)
    # A few nodes carry a label constraint, as a master kept to one zone would.
    for i in range(0, len(nodes), 50):
        nodes[i] = replace(nodes[i], constraints=(("zone", "z1"),))
    networks = {"cluster": make_network(scale.used_addresses)}
    shuffled = hosts[:]
    rng.shuffle(shuffled)
    cases = {
        "binpack": (hosts, "binpack"),
        "spread": (hosts, "spread"),
        "binpack, hosts in random order": (shuffled, "binpack"),
    }
    figures = {}
    for label, (inventory, strategy) in cases.items():
        walls, cpus = [], []
        for _ in range(scale.latency_runs):
            gc.collect()  # start each run with the same heap, not with the last run's garbage
            _, wall, cpu = _timed(place, nodes, inventory, networks, strategy=strategy)
            walls.append(wall * 1000)
            cpus.append(cpu * 1000)
        walls.sort()
        p95 = walls[min(len(walls) - 1, round(0.95 * (len(walls) - 1)))]
        figures[label] = (statistics.median(walls), p95, statistics.median(cpus))
    return figures


def throughput(scale: Scale, seed: int, start) -> tuple[float, float, int, int]:
    """Return placements per wall and per cpu second, instances admitted and nodes placed."""
    rng = random.Random(seed)
    attempt = start(make_hosts(rng, scale.throughput_hosts))
    wall = cpu = 0.0
    admitted = placed_nodes = 0
    gc.collect()
    while True:
        nodes = make_instance(rng, rng.randint(1, 50), nics=False, constrained=rng.random() < 0.2)
        placed, (spent_wall, spent_cpu) = attempt(nodes)
        wall += spent_wall
        cpu += spent_cpu
        if not placed:
            break
        admitted += 1
        placed_nodes += len(nodes)
    return placed_nodes / wall, placed_nodes / cpu, admitted, placed_nodes


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run, for smoke tests")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL

    print(f"placement benchmark: seed {args.seed}, Python {platform.python_version()}")
    print("wall = elapsed time; cpu = this process's cpu time (steadier on a shared machine)")
    print()
    print(
        f"latency: one {scale.latency_nodes:,}-node instance onto {scale.latency_hosts:,} hosts,"
        f" 1 dynamic address each from a /16 with {scale.used_addresses:,} used"
        f" ({scale.latency_runs} runs)"
    )
    print(f"  {'':<32} {'median ms':>10} {'p95 ms':>10} {'median cpu ms':>14}")
    for label, (median, p95, cpu) in latency(scale, args.seed).items():
        print(f"  {label:<32} {median:>10.1f} {p95:>10.1f} {cpu:>14.1f}")
    print()
    print(
        f"throughput: instances of 1-50 nodes onto {scale.throughput_hosts:,} hosts, one after"
        " another, each kept, until the first rejection"
    )
    print(f"  {'':<32} {'placements/s':>12} {'per cpu s':>10} {'instances':>10} {'nodes':>8}")
    baseline = per_call(first_fit, first_fit_rows)
    runs = {
        "engine, kept index (Scheduler)": kept,
        "engine, index per call (place)": per_call(engine, engine_rows),
        "baseline first-fit": baseline,
    }
    results = {label: throughput(scale, args.seed, start) for label, start in runs.items()}
    for label, (rate, cpu_rate, admitted, nodes) in results.items():
        print(f"  {label:<32} {rate:>12,.0f} {cpu_rate:>10,.0f} {admitted:>10,} {nodes:>8,}")
    base = results["baseline first-fit"]
    for label in list(results)[:2]:
        ratios = [a / b if b else float("nan") for a, b in zip(results[label], base, strict=True)]
        name = "ratio " + label.split(" (")[1].rstrip(")") + "/baseline"
        print(
            f"  {name:<32} {ratios[0]:>12.2f} {ratios[1]:>10.2f}"
            f" {ratios[2]:>10.2f} {ratios[3]:>8.2f}"
        )
    seeds = [args.seed, *range(1, 5)]
    admitted = []
    for seed in seeds:
        ours = results["engine, kept index (Scheduler)"]
        if seed != args.seed:
            ours = throughput(scale, seed, kept)
            base = throughput(scale, seed, baseline)
        admitted.append(f"{ours[2] / base[2]:.2f}" if base[2] else "nan")
    print(f"  admitted instances engine/baseline, seeds {', '.join(map(str, seeds))}:")
    print(f"    {'  '.join(admitted)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
