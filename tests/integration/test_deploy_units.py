"""docs/deploy.md's `honcho export systemd` on deploy/Procfile gives one unit per process this
machine runs, with the installed commands, the shared environment file's settings and Celery
names systemd does not mangle."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
PROCFILE = ROOT / "deploy" / "Procfile"


def processes(procfile: Path) -> dict[str, str]:
    lines = re.findall(r"^([a-z]+): (.+)$", procfile.read_text(), re.MULTILINE)
    return dict(lines)


def export(tmp_path: Path, concurrency: str) -> Path:
    units = tmp_path / "units"
    done = subprocess.run(
        [
            str(BIN / "honcho"),
            "export",
            "systemd",
            str(units),
            "-f",
            str(PROCFILE),
            "-e",
            str(ROOT / "deploy" / "paas.env.example"),
            "-d",
            "/var/lib/paas",
            "-a",
            "bigdata-paas",
            "-c",
            concurrency,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return units


def test_the_installed_procfile_has_every_process_of_the_checkouts():
    assert set(processes(PROCFILE)) == set(processes(ROOT / "Procfile"))
    for command in processes(PROCFILE).values():
        assert "workers." not in command and "config/" not in command  # nothing of a checkout


def test_a_machine_without_beat_gets_units_for_the_rest(tmp_path):
    units = export(tmp_path, "web=1,worker=2,orquestrator=1,beat=0,flower=0,agent=1")
    services = sorted(p.name for p in units.glob("*.service"))
    assert services == [
        "bigdata-paas-agent-1.service",
        "bigdata-paas-orquestrator-1.service",
        "bigdata-paas-web-1.service",
        "bigdata-paas-worker-1.service",
        "bigdata-paas-worker-2.service",
    ]
    worker = (units / "bigdata-paas-worker-1.service").read_text()
    (exec_start,) = re.findall(r"^ExecStart=(.+)$", worker, re.MULTILINE)
    assert processes(PROCFILE)["worker"] in exec_start
    # systemd reads %% as %: celery gets %h (its host name), not systemd's %h (a home directory)
    assert "-n pipeline@%%h" in exec_start and re.search(r"[^%]%h", exec_start) is None
    assert "Environment=PAAS_DATABASE_URL_FILE=/etc/bigdata-paas/database-url" in worker
    assert "Restart=always" in worker
    assert "WorkingDirectory=/var/lib/paas" in worker
    target = (units / "bigdata-paas.target").read_text()
    assert "bigdata-paas-beat.target" not in target


def test_the_beat_machine_gets_one_beat(tmp_path):
    units = export(tmp_path, "web=1,worker=1,orquestrator=1,beat=1,flower=1,agent=0")
    assert [p.name for p in units.glob("bigdata-paas-beat-*.service")] == [
        "bigdata-paas-beat-1.service"
    ]
    assert not list(units.glob("bigdata-paas-agent-*.service"))
