"""bench/streams.py still runs: a small run through gunicorn prints a row per number of
streams (nothing here looks at the figures: docs/benchmarks.md records full runs)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_the_streams_bench_prints_its_table():
    done = subprocess.run(
        [sys.executable, "bench/streams.py", "--db", "sqlite", "--streams", "0,3", "--window", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| sqlite |")]
    assert [row.split("|")[2].strip() for row in rows] == ["0", "3"], done.stdout
