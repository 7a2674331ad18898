"""A lock held by one process of the deployment at a time, kept where the database is.

The sweep must not run twice at once: two beats (one per machine, or ``honcho start -c beat=2``
by mistake) would both republish the same stale step. PostgreSQL's session advisory locks are
exactly that lock, and the server drops one whose holder died with its connection. A SQLite
database lives on one machine, so an ``flock`` on a file beside it serves the same purpose
(and goes with its process too).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator

from sqlalchemy import make_url, text

from bigdata_paas.db import Database


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (PostgreSQL's advisory lock key space)."""
    return int.from_bytes(
        hashlib.sha256(f"bigdata_paas:{name}".encode()).digest()[:8], "big", signed=True
    )


@contextlib.contextmanager
def try_exclusive(db: Database, name: str) -> Iterator[bool]:
    """Yield True while this process holds the lock ``name``, or False at once when another
    process does (never waits)."""
    if db.is_sqlite:
        with _file_lock(make_url(db.url).database, name) as locked:
            yield locked
        return
    key = lock_key(name)
    with db.engine.connect() as connection:
        query = text("SELECT pg_try_advisory_lock(:key)")
        held = bool(connection.execute(query, {"key": key}).scalar())
        connection.commit()
        try:
            yield held
        finally:
            if held:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()


@contextlib.contextmanager
def _file_lock(database: str | None, name: str) -> Iterator[bool]:
    if not database or database == ":memory:":
        yield True  # one process owns an in-memory database
        return
    with open(f"{database}.{name}.lock", "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
