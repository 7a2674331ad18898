"""The console is HTTP only, like the API: it reaches the database and the broker only
through the operations (the rule and its checks are tests/api/test_layers.py's)."""

from __future__ import annotations

from pathlib import Path

import pytest

import bigdata_paas.console
from tests.api.test_layers import FORBIDDEN, OWN, imported_modules, runtime_parts_used

CONSOLE_DIR = Path(bigdata_paas.console.__file__).parent


@pytest.mark.parametrize("path", sorted(CONSOLE_DIR.rglob("*.py")), ids=lambda p: p.name)
def test_console_modules_go_through_the_operations(path):
    offending = sorted(
        module
        for module in imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
        or any(module == own or module.startswith(own + ".") for own in OWN)
    )
    assert offending == [], f"{path.name} imports {offending}"
    assert runtime_parts_used(path) == set(), path.name
