"""The package imports nothing of the checkout: an installed platform has no config/, workers/,
bench/ or tests/ beside it (the settings are ``bigdata_paas.settings``)."""

from __future__ import annotations

import ast

from tests.conftest import ROOT

CHECKOUT_ONLY = {"config", "workers", "bench", "tests", "wsgi"}


def test_no_module_of_the_package_imports_the_checkout():
    found = []
    for path in sorted((ROOT / "bigdata_paas").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                for name in names
                if name.partition(".")[0] in CHECKOUT_ONLY
            ]
    assert found == []


def test_migrations_live_in_the_package():
    """A migration written where the repository kept them before would never run: an installed
    platform (and `paas setup`) reads bigdata_paas/migrations/versions only."""
    stray = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("migrations/**/*.py"))
    assert stray == [], "move them to bigdata_paas/migrations/versions/"
