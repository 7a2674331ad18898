"""Fixtures of the quota, token and audit tests: a checked client with the ``sized`` service."""

from __future__ import annotations

import pytest

from tests.api.support import CheckedClient
from tests.quotas.support import register_sized


@pytest.fixture
def client(app):
    app.test_client_class = CheckedClient
    client = app.test_client()
    register_sized(client)
    return client
