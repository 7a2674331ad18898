"""`pip install .` installs the package, and only it, with a working `paas` console script.

The package (a copy of what a checkout holds for it: pyproject.toml and bigdata_paas/) goes
into a fresh virtualenv with pip's usual isolated build; its dependencies come from the
suite's own environment (PYTHONPATH), and the command runs outside the repository, so nothing
of the working tree (config/, tests/ ...) can stand in for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_pip_install_gives_a_paas_command_and_only_the_package(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    site = next((venv / "lib").glob("python3*/site-packages"))
    before = {p.name for p in site.iterdir()}
    # what a checkout holds for the package (pip builds in the source tree: a copy of it)
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "bigdata_paas",
        source / "bigdata_paas",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", source)
    installed = subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    script = venv / "bin" / "paas"
    assert script.exists()

    assert {p.name for p in site.iterdir()} - before == {
        "bigdata_paas",
        "bigdata_paas-0.1.0.dist-info",
    }
    assert (site / "bigdata_paas" / "client" / "cli.py").exists()
    entry_points = (site / "bigdata_paas-0.1.0.dist-info" / "entry_points.txt").read_text()
    assert "paas = bigdata_paas.client.cli:main" in entry_points

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAAS_", "PYTHON"))}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]  # httpx, click, rich
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    version = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert (version.returncode, version.stdout) == (0, "paas 0.1.0\n"), version.stderr
    unset = subprocess.run(
        [str(script), "list"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert unset.returncode == 2
    assert "no server: set PAAS_URL" in unset.stderr
    # the client runs without the server's modules
    imported = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sys, bigdata_paas.client.cli; "
            "print(sorted(m for m in ('config', 'flask', 'sqlalchemy') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert imported.stdout == "[]\n", imported.stderr
