"""Benchmark the podman node driver against direct `podman run` calls; print the figures.

    .venv/bin/python bench/nodes.py              # 10 rounds
    .venv/bin/python bench/nodes.py --quick      # 2 rounds (smoke test)

Each round starts 3 nodes (cpu 1, mem 128 MB, one bind-mounted disk, a static address on a
private bridge, the paas-node image serving check port 7000) one after another through
PodmanDriver.start (which also creates the disk directories, writes the node's config, checks
the network once per driver and checks the container runs), then stops them (PodmanDriver.stop);
then it runs the same three containers (another instance, other addresses) with three direct
`podman run` calls carrying the very arguments the driver passes, and removes them with three
`podman rm -f` calls. The baseline is measured in the same run, round by
round, so machine load affects both alike. Needs podman and busybox-static.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bigdata_paas.nodes import node_spec
from bigdata_paas.nodes.image import ensure_image
from bigdata_paas.nodes.podman import PodmanDriver, podman_env

NODES = ("master0", "slave0", "slave1")


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, env=podman_env())
    if done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:2])}: {done.stderr.strip()}")
    return done


def free_subnet() -> ipaddress.IPv4Network:
    for _ in range(100):
        net = ipaddress.ip_network(f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.0/24")
        route = subprocess.run(["ip", "route", "get", str(net[1])], capture_output=True, text=True)
        if " via " in route.stdout:  # not a network of this machine yet
            return net
    raise RuntimeError("no free private subnet")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    image = ensure_image()
    run = uuid.uuid4().hex[:8]
    label = f"paas.bench={run}"
    net = free_subnet()
    network = f"bench{run}"
    root = Path(tempfile.mkdtemp(prefix="paas-bench-nodes-"))
    (root / "sdb").mkdir()
    driver = PodmanDriver(root / "state", host="bench", labels={"paas.bench": run}, stop_grace=1)
    networks = {network: {"cidr": str(net), "gateway": str(net[1])}}
    driver.ensure_network(network, str(net), str(net[1]))

    def make_spec(instance: str, name: str, host_part: int):
        placed = {
            "name": name,
            "host": "bench",
            "cpu": 1,
            "mem": 128,
            "docker_image": image,
            "check_ports": [7000],
            "disks": [{"name": "d0", "origin": str(root / "sdb"), "destination": "/data/0"}],
            "networks": {"eth0": {"networkname": network, "address": str(net[host_part])}},
        }
        return node_spec(placed, instance, networks)

    times: dict[str, list[float]] = {
        "driver start": [],
        "podman run": [],
        "driver stop": [],
        "podman rm": [],
    }
    load_before = os.getloadavg()
    try:
        for _ in range(rounds):
            instance = uuid.uuid4().hex
            specs = [make_spec(instance, name, 10 + i) for i, name in enumerate(NODES)]
            began = time.perf_counter()
            for spec in specs:
                driver.start(spec)
            times["driver start"].append(time.perf_counter() - began)
            began = time.perf_counter()
            for spec in specs:
                driver.stop(spec.instance_id, spec.name)
            times["driver stop"].append(time.perf_counter() - began)

            # the same three containers (another instance, other addresses) with the very
            # arguments the driver passes, run directly; disk dirs and config made untimed
            direct = [make_spec(uuid.uuid4().hex, name, 100 + i) for i, name in enumerate(NODES)]
            calls = []
            for spec in direct:
                driver._prepare_disks(spec)
                calls.append(driver.run_args(spec, driver._config_file(spec)))
            began = time.perf_counter()
            for call in calls:
                podman(*call)
            times["podman run"].append(time.perf_counter() - began)
            began = time.perf_counter()
            for spec in direct:
                podman("rm", "--force", "--time", "1", spec.container_name)
            times["podman rm"].append(time.perf_counter() - began)
    finally:
        ids = podman("ps", "--all", "--quiet", "--filter", f"label={label}").stdout.split()
        if ids:
            podman("rm", "--force", "--time", "0", *ids)
        driver.remove_network(network)
        subprocess.run(["rm", "-rf", str(root)], check=False)
    load_after = os.getloadavg()
    print(f"podman node driver vs direct podman run: 3 nodes, {rounds} rounds (seconds per 3)")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}", end="")
    print(f" ({os.cpu_count()} cores)")
    print(f"{'what':<14} {'p50':>7} {'p95':>7} {'mean':>7}")
    for what, values in times.items():
        print(
            f"{what:<14} {percentile(values, 0.5):7.3f} {percentile(values, 0.95):7.3f} "
            f"{statistics.fmean(values):7.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
