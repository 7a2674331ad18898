"""Connections for the hot paths: the reads (the token check, GET /instances/{id}) with no
transaction on PostgreSQL and no ORM, the token check not even Core; and a launch's
transaction, in two scripts on the driver."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import psycopg
from psycopg import pq
from psycopg.types.json import Json
from sqlalchemy import JSON, ClauseElement, Connection, Dialect, Table, exc

from bigdata_paas.db import unreachable
from bigdata_paas.errors import DatabaseUnavailable
from bigdata_paas.runtime import Runtime

log = logging.getLogger(__name__)


@contextmanager
def read_connection(rt: Runtime) -> Iterator[Connection]:
    """A connection for Core selects alone (rows, not ORM objects); never commit on it.

    On PostgreSQL its statements run in autocommit: no BEGIN before them and no ROLLBACK
    after, two round trips fewer. Each statement still sees what was committed when it
    began, as it would in a READ COMMITTED transaction (the server's default, which the
    engine keeps): a token revoked or an instance changed a moment ago is seen at once. The
    connection's usual isolation comes back when the pool takes it back. SQLite keeps its
    transaction (its BEGIN costs no round trip). It is the session's connection: a database
    out of reach is a DatabaseUnavailable (503) as for any session.
    """
    with rt.db.session() as session:
        if rt.db.is_sqlite:
            yield session.connection()
        else:
            yield session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def driver_row(rt: Runtime, statement: ClauseElement, params: Mapping[str, Any]) -> tuple | None:
    """PostgreSQL only: the first row of ``statement`` (a select built once), compiled once
    and run prepared, in autocommit, on a pooled connection's driver.

    The read of every request (the token check) skips the Session and Core's execution: they
    cost twice what the statement does (docs/benchmarks.md). What it sees is what
    read_connection's statements see (committed when it began).
    """
    with driver_connection(rt) as driver:
        sql, constants = _compiled(statement, rt.db.engine.dialect)
        values = {**constants, **params} if constants else params
        return driver.execute(sql, values, prepare=True).fetchone()


#: a script's first statement when it begins a transaction, and its last when it commits
BEGIN, COMMIT = "BEGIN", "COMMIT"


def run_script(
    rt: Runtime,
    driver: psycopg.Connection,
    steps: Sequence[tuple[ClauseElement | str, Mapping[str, Any]]],
) -> list[list[tuple]]:
    """Send ``steps`` (each a statement built once, compiled once, and its parameters; or
    BEGIN, COMMIT) to the server as one script: one round trip, however many statements.
    The rows of each (none for one that returns none), in order. The first statement that
    fails raises its error, and the server runs none after it. A transaction is a script
    that begins with BEGIN, and the one that ends with COMMIT; driver_connection rolls back
    one that did not commit.

    The parameters are bound here, by the driver's own quoting (``ClientCursor``): a
    script's statements cannot be prepared, and the extended protocol takes one statement
    a message, a round trip each unless pipelined (which costs a wait per statement).
    """
    cursor = psycopg.ClientCursor(driver)
    script = "; ".join(_bound(rt, cursor, statement, params) for statement, params in steps)
    cursor.execute(script)
    answers = []
    while True:
        answers.append(cursor.fetchall() if cursor.description is not None else [])
        if not cursor.nextset():
            return answers


def _bound(
    rt: Runtime,
    cursor: psycopg.ClientCursor,
    statement: ClauseElement | str,
    params: Mapping[str, Any],
) -> str:
    if isinstance(statement, str):
        return statement
    sql, constants = _compiled(statement, rt.db.engine.dialect)
    return cursor.mogrify(sql, {**constants, **params})


@contextmanager
def driver_connection(rt: Runtime) -> Iterator[psycopg.Connection]:
    """PostgreSQL only: a pooled connection's psycopg connection, in autocommit (it sends no
    BEGIN of its own, a round trip: a script begins its transaction itself), given back to
    the pool as it came: out of autocommit, what a script left uncommitted rolled back.

    It is checked out as any (the pool pings one that was idle). A database out of reach, or
    a connection that broke on the way, is a DatabaseUnavailable (503), the broken
    connection dropped from the pool.
    """
    try:
        pooled = rt.db.engine.raw_connection()
    except (exc.SQLAlchemyError, psycopg.OperationalError) as error:
        # a pool timeout is SQLAlchemy's; a refused connection is the driver's as it is
        if isinstance(error, psycopg.OperationalError) or unreachable(error):
            log.warning("database unavailable: %s", str(error).partition("\n")[0])
            raise DatabaseUnavailable() from error
        raise
    driver = cast(psycopg.Connection, pooled.driver_connection)
    try:
        driver.autocommit = True
        try:
            yield driver
        finally:
            if not driver.closed:
                if driver.info.transaction_status != pq.TransactionStatus.IDLE:
                    with contextlib.suppress(psycopg.Error):
                        driver.execute("ROLLBACK")
                driver.autocommit = False
    except psycopg.Error as error:
        if driver.broken or driver.closed or isinstance(error, psycopg.OperationalError):
            pooled.invalidate(error)
            log.warning("database unavailable: %s", str(error).partition("\n")[0])
            raise DatabaseUnavailable() from error
        raise
    finally:
        pooled.close()


def driver_values(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` (values of ``table``'s columns) as the driver takes them: a JSON column's
    value as JSON (None too, as Core writes it: JSON null)."""
    return {
        name: Json(value) if isinstance(table.c[name].type, JSON) else value
        for name, value in row.items()
    }


@functools.lru_cache(maxsize=64)
def _compiled(statement: ClauseElement, dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """``statement`` as the driver runs it (``%(name)s`` parameters), and the values of its
    own parameters (a literal in it: ``coalesce(..., 0)``), compiled once."""
    compiled = statement.compile(dialect=dialect)
    constants = {name: value for name, value in compiled.params.items() if value is not None}
    return str(compiled), constants
