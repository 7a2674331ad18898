"""Fixtures of the integration tests, wrapping the suite-wide ones of tests/conftest.py.

Two adjustments to ``env`` (and ``services_env``), both about the data directory:

* orquestrators run as ``nobody`` when the worker runs as root, so their work dirs (under
  ``PAAS_DATA_DIR``) must sit below directories ``nobody`` may traverse; pytest's
  ``/tmp/pytest-of-root`` is mode 0700, so the data dir moves to a 0711 temp dir;
* ``make_app()`` migrates before ``create_app()`` creates the data dir, and SQLite cannot
  create its file in a missing directory, so the directory is created up front.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def data_root() -> Iterator[Path]:
    """A directory any user may traverse (not list), removed after the test."""
    root = Path(tempfile.mkdtemp(prefix="paas-it-"))
    os.chmod(root, 0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _relocate(env: dict[str, str], root: Path) -> dict[str, str]:
    data_dir = root / "var"
    data_dir.mkdir()
    return {**env, "PAAS_DATA_DIR": str(data_dir)}


@pytest.fixture
def env(env: dict[str, str], data_root: Path) -> dict[str, str]:
    return _relocate(env, data_root)


@pytest.fixture
def services_env(services_env: dict[str, str], data_root: Path) -> dict[str, str]:
    return _relocate(services_env, data_root)
