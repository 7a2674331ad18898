"""`pip install .` installs the package, and only it, with working console scripts.

The package (a copy of what a checkout holds for it: pyproject.toml, MANIFEST.in and
bigdata_paas/) goes into a fresh virtualenv with pip's usual isolated build; its dependencies
come from the suite's own environment, and the commands run outside the repository, so nothing
of the working tree (config/, workers/, migrations, tests/ ...) can stand in for it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

#: what a checkout holds for the package: everything else stays out of the build
SOURCE_FILES = ("pyproject.toml", "MANIFEST.in")


@dataclass
class Installed:
    venv: Path
    site: Path
    added: set[str]  # what `pip install` put into site-packages

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    tmp = tmp_path_factory.mktemp("packaging")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    site = next((venv / "lib").glob("python3*/site-packages"))
    before = {p.name for p in site.iterdir()}
    # pip builds in the source tree: a copy of it
    source = tmp / "source"
    shutil.copytree(
        ROOT / "bigdata_paas",
        source / "bigdata_paas",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for name in SOURCE_FILES:
        shutil.copy(ROOT / name, source)
    result = subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return Installed(venv=venv, site=site, added={p.name for p in site.iterdir()} - before)


def outside_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a command run from an unrelated directory: no PAAS_* or PYTHON*
    variable of the suite's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAAS_", "PYTHON"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def with_dependencies(installed) -> Installed:
    """The installed package with the server's dependencies: the suite's site-packages on a
    .pth file, after the venv's own (the package comes from the venv, never from the
    checkout: a .pth line adds a directory, the editable install's finder in it stays off)."""
    (installed.site / "zz-suite-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    return installed


def test_pip_install_gives_a_paas_command_and_only_the_package(installed, tmp_path):
    script = installed.venv / "bin" / "paas"
    assert script.exists()
    assert installed.added == {"bigdata_paas", "bigdata_paas-0.1.0.dist-info"}
    assert (installed.site / "bigdata_paas" / "client" / "cli" / "__init__.py").exists()
    dist_info = installed.site / "bigdata_paas-0.1.0.dist-info"
    entry_points = (dist_info / "entry_points.txt").read_text()
    assert "paas = bigdata_paas.client.cli:main" in entry_points

    # the client alone: its own dependencies on PYTHONPATH, the server's unused
    env = outside_env(tmp_path, PYTHONPATH=sysconfig.get_paths()["purelib"])
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
            installed.bin("python"),
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


def test_every_file_of_the_package_is_installed(installed):
    """Migrations, the node image's files, containers.conf, templates and assets: whatever
    lies under bigdata_paas/ in the checkout, Python or not."""
    tracked = subprocess.run(
        ["git", "ls-files", "bigdata_paas"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    assert any(name.endswith(".mako") for name in tracked)  # non-Python files are tracked
    # a path under site-packages is the same as under the checkout's root
    missing = [n for n in tracked if (ROOT / n).exists() and not (installed.site / n).exists()]
    assert missing == []
    entry_points = (
        installed.site / "bigdata_paas-0.1.0.dist-info" / "entry_points.txt"
    ).read_text()
    for script in ("paas-server = bigdata_paas.server:main", "paas-agent = "):
        assert script in entry_points


def test_installed_server_sets_up_a_database_outside_the_repository(with_dependencies, tmp_path):
    """`paas-server setup` finds its migrations in the installed package: every table of the
    models exists afterwards, at the newest revision the package ships."""
    data = tmp_path / "var"
    env = outside_env(tmp_path, PAAS_DATA_DIR=str(data), PAAS_AGENT_HOSTS="")
    setup = subprocess.run(
        [with_dependencies.bin("paas-server"), "setup"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "created the user admin" in setup.stdout
    with sqlite3.connect(data / "paas.sqlite3") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
        (revision,) = db.execute("select version_num from alembic_version").fetchone()
    from bigdata_paas.models import Base

    assert set(Base.metadata.tables) <= tables
    newest = max(
        p.name.partition("_")[0] for p in (ROOT / "bigdata_paas/migrations/versions").glob("0*.py")
    )
    assert revision == newest

    again = subprocess.run(
        [with_dependencies.bin("paas-server"), "create-user", "alice"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    bad = subprocess.run(
        [with_dependencies.bin("paas-server"), "setup"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "PAAS_PORT": "eighty"},
        timeout=60,
    )
    assert bad.returncode != 0
    assert "PAAS_PORT='eighty'" in bad.stderr


def test_installed_worker_app_and_agent_need_no_checkout(with_dependencies, tmp_path):
    """The Celery app the workers, beat and Flower run is importable from the package, with
    the pipeline's tasks, and without the repository's config/ or workers/ modules."""
    env = outside_env(tmp_path, PAAS_DATA_DIR=str(tmp_path / "var"))
    probe = subprocess.run(
        [
            with_dependencies.bin("python"),
            "-c",
            "import sys, bigdata_paas; from bigdata_paas.worker import celery_app; "
            "print(bigdata_paas.__file__); "
            "print(sorted(m for m in ('config', 'workers') if m in sys.modules)); "
            "print(sorted(t for t in celery_app.tasks if t.startswith('pipeline.')))",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    location, checkout_modules, tasks = probe.stdout.splitlines()
    assert location.startswith(str(with_dependencies.site))
    assert checkout_modules == "[]"
    assert "'pipeline.submit'" in tasks and "'pipeline.sweep'" in tasks
    agent = subprocess.run(
        [with_dependencies.bin("paas-agent"), "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert agent.returncode == 0, agent.stderr
    assert "--hosts" in agent.stdout
