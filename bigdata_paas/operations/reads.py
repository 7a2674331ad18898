"""Connections for the hot reads (the token check, GET /instances/{id}): no transaction on
PostgreSQL, no ORM; the token check not even Core."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, cast

import psycopg
from sqlalchemy import ClauseElement, Connection, Dialect, exc

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
    and run prepared in autocommit on a pooled connection's driver.

    The read of every request (the token check) skips the Session and Core's execution: they
    cost twice what the statement does (docs/benchmarks.md). What it sees is what
    read_connection's statements see (committed when it began). The connection is checked
    out as any (the pool pings one that was idle), and goes back in transactions. A database
    out of reach, or a connection that broke on the way, is a DatabaseUnavailable (503), the
    broken connection dropped from the pool.
    """
    sql = _sql(statement, rt.db.engine.dialect)
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
        driver.autocommit = True  # no round trip: psycopg sends no BEGIN from now on
        try:
            return driver.execute(sql, params, prepare=True).fetchone()
        finally:
            driver.autocommit = False
    except psycopg.Error as error:
        if driver.broken or driver.closed or isinstance(error, psycopg.OperationalError):
            pooled.invalidate(error)
            log.warning("database unavailable: %s", str(error).partition("\n")[0])
            raise DatabaseUnavailable() from error
        raise
    finally:
        pooled.close()


@functools.lru_cache(maxsize=64)
def _sql(statement: ClauseElement, dialect: Dialect) -> str:
    """``statement`` as the driver runs it (``%(name)s`` parameters), compiled once."""
    return str(statement.compile(dialect=dialect))
