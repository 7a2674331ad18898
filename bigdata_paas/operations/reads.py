"""A connection for the hot reads (the token check, GET /instances/{id}): no transaction on
PostgreSQL, no ORM."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from bigdata_paas.runtime import Runtime


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
