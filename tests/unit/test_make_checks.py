"""`make` checks the Python it is given before it makes a virtualenv, and says what is missing:
an old or absent Python, or one without the venv module (Debian ships ensurepip apart)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def check(tmp_path, python: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "check-python", f"PYTHON={python}", f"VENV={tmp_path}/v"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def fake_python(tmp_path, name: str, body: str) -> str:
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_this_python_passes(tmp_path):
    done = check(tmp_path, sys.executable)
    assert (done.returncode, done.stderr) == (0, "")


def test_an_old_python_is_named(tmp_path):
    old = fake_python(tmp_path, "python3.9", "echo 'Python 3.9.2'; exit 1")
    done = check(tmp_path, old)
    assert done.returncode != 0
    assert f"make: {old} is missing or older than 3.11: install Python 3.11 or newer" in done.stderr


def test_a_missing_python_is_named(tmp_path):
    done = check(tmp_path, "python3.99")
    assert done.returncode != 0
    assert "make: python3.99 is missing or older than 3.11" in done.stderr


def test_a_python_without_venv_says_what_to_install(tmp_path):
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "ensurepip.py").write_text("raise ImportError('not installed')\n")
    python = fake_python(tmp_path, "python3", f'PYTHONPATH={hidden} exec {sys.executable} "$@"')
    done = check(tmp_path, python)
    assert done.returncode != 0
    assert f"make: {python} has no venv module with ensurepip: install it" in done.stderr
    assert "apt-get install python3-venv" in done.stderr
