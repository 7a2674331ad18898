"""Fixtures of the console's server-side tests: a signed-in console per role."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.console.support import Console, token_of


@pytest.fixture
def admin_console(app) -> Console:
    console = Console(app)
    assert console.sign_in(ADMIN_TOKEN).status_code == 302
    return console


@pytest.fixture
def user_console(app, make_user) -> Console:
    console = Console(app)
    assert console.sign_in(token_of(make_user("alice"))).status_code == 302
    return console
