"""The database: engine, sessions and the SQLite settings that make it safe for many processes."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from sqlalchemy import Delete, Update, create_engine, event, exc, make_url
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import Session, sessionmaker

from bigdata_paas.errors import DatabaseUnavailable
from bigdata_paas.settings import POOL_OVERFLOW, POOL_SIZE

log = logging.getLogger(__name__)


def changed_rows(
    session: Session, statement: Update | Delete, params: dict | list[dict] | None = None
) -> int:
    """Run an UPDATE or DELETE (with ``params``: one set, or a list to run it for each) and
    return how many rows it changed: the guard's answer."""
    # Session.execute is typed to return a Result for any statement; for an UPDATE or a
    # DELETE it is a CursorResult, the one that carries the row count.
    return cast(CursorResult, session.execute(statement, params)).rowcount


def make_engine(url: str, pool_size: int = POOL_SIZE, max_overflow: int = POOL_OVERFLOW) -> Engine:
    """Create the engine for ``url``; SQLite gets WAL, a busy timeout and immediate writes.

    On PostgreSQL a process keeps up to ``pool_size`` connections open, and opens up to
    ``max_overflow`` more while that many are in use at once, each closed when given back:
    a web worker whose requests often need more than ``pool_size`` at once would connect
    anew (a PostgreSQL backend started, then ended) on most of them.
    """
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Several processes (web, workers) share one file: WAL lets readers run beside the
        # writer, and BEGIN IMMEDIATE takes the write lock up front so two writers wait for
        # each other instead of failing on a lock upgrade. Each process keeps a few
        # connections open (none crosses a fork, _forget_after_fork): opening one per
        # session cost its pragmas and, when it was the last one open, a WAL checkpoint on
        # close.
        engine = create_engine(
            url, pool_size=5, max_overflow=10, pool_timeout=30, connect_args={"timeout": 30}
        )
        _forget_after_fork(engine)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # The platform's data is the platform's alone (orquestrators run beside it).
            # (SQLite removes -wal and -shm when the last connection closes: they may go
            # between a look and a chmod, so only the chmod looks.)
            for suffix in ("", "-wal", "-shm") if database else ():
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(database + suffix, 0o600)
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
    event.listen(engine, "checkin", _idle_since)
    event.listen(engine, "checkout", _ping_if_idle)
    _forget_after_fork(engine)
    return engine


def _forget_after_fork(engine: Engine) -> None:
    """In a forked child (a Celery pool process), drop the parent's pooled connections
    without closing them: the parent still uses them, and two processes on one connection
    corrupt it. The child opens its own."""
    ref = weakref.ref(engine)

    def forget() -> None:
        forked = ref()
        if forked is not None:
            forked.dispose(close=False)

    os.register_at_fork(after_in_child=forget)


#: seconds a pooled connection may have been idle before it is pinged as it is checked out
PING_AFTER = 0.25


def _idle_since(_dbapi_connection, record) -> None:
    record.info["idle_since"] = time.monotonic()


def _heard_from_server(dbapi_connection) -> bool:
    """Whether an idle connection's socket has something to read: a server that shuts down
    (or a backend that is terminated) says so and closes it, which a look without a round
    trip sees."""
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError, AttributeError):
        return True  # closed already, or no socket to look at: let the ping decide
    return bool(readable)


def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    """Ping a connection that has been idle for PING_AFTER, or whose server has spoken since
    (a restart, however quick, closes it): one that died is replaced (the pool tries another)
    instead of failing the request. One in steady use, whose socket is quiet, is not pinged
    (a ping per checkout was one round trip more per transaction)."""
    since = record.info.get("idle_since")
    if since is None:
        return  # new
    if time.monotonic() - since < PING_AFTER and not _heard_from_server(dbapi_connection):
        return  # in use a moment ago, and nothing came from the server since
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        # The ping opened a transaction: end it, so the connection leaves the pool as it came
        # (a connection in a transaction cannot be switched to autocommit, reads.py).
        dbapi_connection.rollback()
    except Exception as error:  # any failure: the pool drops it and connects anew
        raise exc.DisconnectionError(str(error)) from error


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the database cannot be used right now, rather than that a
    statement is wrong: a lost or refused connection, a server shutting down or starting,
    an exhausted pool, a lock wait that timed out."""
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, (exc.OperationalError, exc.InterfaceError, exc.TimeoutError))


class Database:
    """One engine and its session factory, shared by the web app and the workers."""

    def __init__(
        self, url: str, pool_size: int = POOL_SIZE, max_overflow: int = POOL_OVERFLOW
    ) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size, max_overflow)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a session; commit is the caller's, rollback and close happen here.

        A database that cannot be reached (refused, restarting, a connection that died, a
        pool with no connection left, SQLite busy past its timeout) raises
        ``DatabaseUnavailable``: a 503 for the API, a retry for the workers.
        """
        session = self.sessionmaker()
        try:
            yield session
        except BaseException as error:
            with contextlib.suppress(exc.SQLAlchemyError):  # a dead connection cannot roll back
                session.rollback()
            if unreachable(error):
                log.warning("database unavailable: %s", str(error).partition("\n")[0])
                raise DatabaseUnavailable() from error
            raise
        finally:
            try:
                session.close()
            except exc.SQLAlchemyError as error:
                # The work is done (or has its own error on the way out): a connection that
                # died as it was given back costs nothing but itself, which the pool drops.
                if not unreachable(error):
                    raise
                log.warning("database connection lost on close: %s", str(error).partition("\n")[0])

    def dispose(self) -> None:
        self.engine.dispose()
