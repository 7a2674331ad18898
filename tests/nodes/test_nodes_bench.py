"""The node benches still run: a small run exits 0 and prints both sets of figures.

Nothing here looks at the values (tests never assert on speed); docs/benchmarks.md records a
full run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.nodes.support import podman

ROOT = Path(__file__).resolve().parents[2]


def test_the_nodes_bench_prints_the_driver_and_direct_podman(podman_session, node_image):
    done = subprocess.run(
        [sys.executable, "bench/nodes.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for label in ("driver start", "podman run", "driver stop", "podman rm"):
        [row] = [line for line in done.stdout.splitlines() if line.startswith(label)]
        assert len(re.findall(r"\d+\.\d{3}", row)) == 3, row
    assert "load average" in done.stdout
    # it cleaned up after itself
    assert podman("ps", "--all", "--quiet", "--filter", "label=paas.bench").stdout == ""


def test_the_agents_bench_prints_the_platform_and_direct_podman(podman_session, node_image):
    done = subprocess.run(
        [sys.executable, "bench/agents.py", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    for label in (
        "platform launch -> running",
        "platform destroy -> destroyed",
        "podman run x 3 (direct)",
        "podman rm -f x 3 (direct)",
    ):
        [row] = [line for line in done.stdout.splitlines() if line.startswith(label)]
        assert len(re.findall(r"\d+\.\d{3}", row.removeprefix(label))) == 3, row
    assert "load average" in done.stdout
    assert podman("ps", "--all", "--quiet", "--filter", "label=paas.bench").stdout == ""
