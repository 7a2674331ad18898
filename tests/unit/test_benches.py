"""The benchmarks still run: each small run exits 0 and prints its figures and its baseline.

Nothing here looks at the figures' values (tests never assert on speed); docs/benchmarks.md
records full runs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def figure_rows(output: str, label: str) -> list[str]:
    """The lines that start with ``label`` and carry at least one number."""
    return [
        line
        for line in output.splitlines()
        if line.strip().startswith(label) and re.search(r"\d", line.removeprefix(label))
    ]


def test_the_placement_bench_prints_the_engine_and_first_fit():
    output = run_bench("bench/placement.py", "--quick")
    for label in (
        "binpack",
        "spread",
        "engine, kept index (Scheduler)",
        "engine, index per call (place)",
        "baseline first-fit",
        "ratio Scheduler/baseline",
    ):
        assert figure_rows(output, label), (label, output)


@pytest.mark.parametrize("template", ["gluster/3.7.11"])
def test_the_render_bench_prints_isolated_and_in_process_renders(template):
    output = run_bench("bench/render.py", "--n", "3", "--templates", template)
    assert template.split("/")[0] in output, output
    assert len(re.findall(r"\d+\.\d+ ms", output)) >= 4, output
