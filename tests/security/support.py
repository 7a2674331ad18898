"""Helpers of the security tests: the database as plain data, and what changed in it."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from bigdata_paas.models import Base

Snapshot = dict[str, dict[Any, dict[str, Any]]]


def db_state(app) -> Snapshot:
    """Every row of every table, by table and primary key."""
    state: Snapshot = {}
    with app.extensions["paas"].db.session() as session:
        for table in Base.metadata.sorted_tables:
            key = [c.name for c in table.primary_key.columns]
            rows = {}
            for row in session.execute(select(table)).mappings():
                rows[tuple(row[k] for k in key)] = dict(row)
            state[table.name] = rows
        session.rollback()
    return state


def changed_rows(before: Snapshot, after: Snapshot) -> list[tuple[str, dict[str, Any]]]:
    """(table, row) of every row added, removed or changed (the newer version if any)."""
    changes = []
    for table in sorted(set(before) | set(after)):
        old, new = before.get(table, {}), after.get(table, {})
        for pk in set(old) | set(new):
            if old.get(pk) != new.get(pk):
                changes.append((table, new.get(pk) or old[pk]))
    return changes


def assert_unchanged(before: Snapshot, after: Snapshot, what: str = "") -> None:
    changes = changed_rows(before, after)
    assert changes == [], f"{what}: changed {[(t, _short(r)) for t, r in changes][:5]}"


#: what ``id`` prints (``uid=0(root) gid=0(root) ...``)
ID_OUTPUT = re.compile(r"uid=\d+\(\w+\)")


def assert_secret_free(text: str, secrets: list[str], what: str = "") -> None:
    for secret in secrets:
        assert secret not in text, f"{what} leaks {secret!r}: {text[:400]}"
    assert not ID_OUTPUT.search(text), f"{what} leaks the output of id: {text[:400]}"


def _short(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if len(repr(v)) < 60 else repr(v)[:57] + "...") for k, v in row.items()}
