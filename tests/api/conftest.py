"""Fixtures of the API tests, wrapping the suite-wide ones of tests/conftest.py.

* ``client``: every response of every API test goes through ``check_response`` (no 5xx, no
  traceback or SQL in a body, every error the one JSON envelope).
* ``shared_client``: one app per test module, for tables of requests that must change nothing
  (validation errors, auth refusals); each such test still checks that nothing changed.
"""

from __future__ import annotations

import uuid

import pytest

from bigdata_paas.operations.users import create_user
from tests.api.support import CheckedClient
from tests.conftest import ADMIN_TOKEN, base_env, bearer, make_app, register_example


@pytest.fixture
def client(app):
    app.test_client_class = CheckedClient
    return app.test_client()


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory):
    app = make_app(base_env(tmp_path_factory.mktemp("shared") / "var"))
    app.test_client_class = CheckedClient
    yield app
    app.extensions["paas"].db.dispose()


@pytest.fixture(scope="module")
def shared_client(shared_app):
    """A client of the module's app, where gluster 3.7.11 and cdh 5.7.2 are registered."""
    client = shared_app.test_client()
    register_example(client, bearer(ADMIN_TOKEN), "gluster", "3.7.11")
    register_example(client, bearer(ADMIN_TOKEN), "cdh", "5.7.2")
    return client


@pytest.fixture(scope="module")
def shared_user(shared_app):
    """Make a user (role ``user`` unless told) of the module's app; return its auth headers."""

    def make(name: str | None = None, role: str = "user") -> dict[str, str]:
        rt = shared_app.extensions["paas"]
        return bearer(
            create_user(rt, name or f"u{uuid.uuid4().hex[:8]}", role, actor="admin")["token"]
        )

    return make
