"""The API is HTTP only: its modules reach the database and the broker through operations.

No module of ``bigdata_paas/api`` imports SQLAlchemy, Celery (or kombu, alembic, psycopg), nor
the package's own session and publishing modules (``db``, ``messaging``, ``tasks``); the
models' vocabulary (``ROLES``, ``HOST_STATES``) is plain constants and may be read.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bigdata_paas.api

API_DIR = Path(bigdata_paas.api.__file__).parent
#: packages below the operations: a view that imports them does an operation's work
FORBIDDEN = ("sqlalchemy", "celery", "kombu", "alembic", "psycopg")
OWN = ("bigdata_paas.db", "bigdata_paas.messaging", "bigdata_paas.tasks")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (not only at the top)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(API_DIR.rglob("*.py")), ids=lambda p: p.name)
def test_api_modules_import_neither_the_database_nor_the_broker(path):
    offending = sorted(
        module
        for module in imported_modules(path)
        if module.split(".")[0] in FORBIDDEN
        or any(module == own or module.startswith(own + ".") for own in OWN)
    )
    assert offending == [], f"{path.name} imports {offending}"


def runtime_parts_used(path: Path) -> set[str]:
    """The runtime's database and Celery app, wherever ``path`` reaches for them."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("db", "celery")
    }


@pytest.mark.parametrize("path", sorted(API_DIR.rglob("*.py")), ids=lambda p: p.name)
def test_api_modules_open_no_session_and_publish_nothing(path):
    """Operations own their transactions and messages; a view hands them the runtime."""
    assert runtime_parts_used(path) == set(), path.name


def test_the_checks_see_a_session_opened_in_a_view(tmp_path):
    module = tmp_path / "view.py"
    module.write_text("def view():\n    with runtime().db.session() as session:\n        pass\n")
    assert runtime_parts_used(module) == {"db"}


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "view.py"
    module.write_text("def view():\n    from sqlalchemy import text\n    return text\n")
    assert "sqlalchemy" in imported_modules(module)
