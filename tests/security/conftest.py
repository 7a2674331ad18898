"""Fixtures of the security tests: one app per module, its whole database as plain data.

Like ``shared_app`` of tests/api/conftest.py, each module gets one app (and one data dir) for
all its cases, so that a table of hundreds of requests stays fast; every case compares the
database before and after, so the cases cannot hide each other's changes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bigdata_paas.operations.users import create_user
from tests.api.support import CheckedClient
from tests.conftest import ADMIN_TOKEN, base_env, bearer, make_app

#: a PAAS_* value that must never reach a client, a log line of an instance or a template
CANARY = "paas-canary-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def security_root() -> Iterator[Path]:
    """A data root any user may traverse (orquestrators may run as ``nobody``)."""
    root = Path(tempfile.mkdtemp(prefix="paas-security-"))
    os.chmod(root, 0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def security_env(security_root) -> dict[str, str]:
    # Streams end after 0.2 s: a test reads whole answers, and no worker moves an instance.
    return base_env(security_root / "var", PAAS_FLOWER_PASSWORD=CANARY, PAAS_STREAM_MAX_AGE="0.2")


@pytest.fixture(scope="module")
def security_app(security_env):
    app = make_app(security_env)
    app.test_client_class = CheckedClient
    yield app
    app.extensions["paas"].db.dispose()


@pytest.fixture(scope="module")
def security_client(security_app):
    return security_app.test_client()


@pytest.fixture(scope="module")
def new_user(security_app):
    """Create a user of the module's app; return (name, auth headers)."""

    def make(name: str, role: str = "user") -> tuple[str, dict[str, str]]:
        token = create_user(security_app.extensions["paas"], name, role, actor="admin")["token"]
        return name, bearer(token)

    return make


@pytest.fixture(scope="module")
def secrets(security_env) -> list[str]:
    """Text no answer, failure reason or log may ever contain."""
    values = [v for k, v in security_env.items() if k.startswith("PAAS_") and len(v) >= 8]
    return [
        ADMIN_TOKEN,
        CANARY,
        *values,
        "root:x:0:0",  # /etc/passwd
        "<class ",
        "<function ",
        "<built-in",
        "<module ",
    ]
