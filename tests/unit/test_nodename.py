"""Every copy of a Procfile process gets a Celery node name of its own, the same after a restart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bigdata_paas.messaging.nodename import node_name, process_copy
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "pipeline-1@%h"),  # started by hand
        ({"HONCHO_PROCESS_NAME": "worker.1"}, "pipeline-1@%h"),
        ({"HONCHO_PROCESS_NAME": "worker.3"}, "pipeline-3@%h"),
        ({"HONCHO_PROCESS_NAME": "worker.12"}, "pipeline-12@%h"),
        ({"HONCHO_PROCESS_NAME": "worker"}, "pipeline-1@%h"),
        ({"HONCHO_PROCESS_NAME": "worker.x"}, "pipeline-1@%h"),
        ({"HONCHO_PROCESS_NAME": "worker.0"}, "pipeline-1@%h"),
        ({"HONCHO_PROCESS_NAME": "worker.3", "PAAS_PROCESS_COPY": "7"}, "pipeline-7@%h"),
    ],
)
def test_the_copy_number_names_the_node(environ, expected):
    assert node_name("pipeline", environ) == expected


@pytest.mark.parametrize("given", ["0", "-1", "two", "1.5"])
def test_a_malformed_copy_number_is_refused_naming_the_variable(given):
    with pytest.raises(ValueError, match="PAAS_PROCESS_COPY"):
        process_copy({"PAAS_PROCESS_COPY": given})


@pytest.mark.parametrize("role", ["", "Pipeline", "pipe line", "a@b", "x;rm"])
def test_a_role_is_a_plain_word(role):
    with pytest.raises(ValueError, match="node role"):
        node_name(role, {})


def test_the_procfile_gets_one_name_per_copy_from_honcho():
    """What the Procfile's ``$(python -m ...)`` prints in each copy honcho starts."""
    names = set()
    for copy in (1, 2, 3):
        done = subprocess.run(
            [sys.executable, "-m", "bigdata_paas.messaging.nodename", "orquestrator"],
            cwd=ROOT,
            env={"HONCHO_PROCESS_NAME": f"orquestrator.{copy}", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        names.add(done.stdout.strip())
    assert names == {"orquestrator-1@%h", "orquestrator-2@%h", "orquestrator-3@%h"}
    usage = subprocess.run(
        [sys.executable, "-m", "bigdata_paas.messaging.nodename"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_units_exported_from_the_procfile_name_their_copy(tmp_path):
    """``honcho export systemd -c worker=2``: each unit holds its copy's number."""
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "honcho"),
            *("export", "-c", "worker=2,orquestrator=2", "-a", "paas", "systemd"),
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    for unit, copy, role in (
        ("paas-worker-2.service", 2, "pipeline"),
        ("paas-orquestrator-1.service", 1, "orquestrator"),
    ):
        text = (tmp_path / unit).read_text()
        process = "worker" if role == "pipeline" else role
        assert f"Environment=HONCHO_PROCESS_NAME={process}.{copy}" in text
        assert f"python -m bigdata_paas.messaging.nodename {role}" in text
