"""A session for the hot reads (the token check, GET /instances/{id}): no transaction on
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from bigdata_paas.runtime import Runtime


@contextmanager
def read_session(rt: Runtime) -> Iterator[Session]:
    """A session for reads alone; never commit in it.

    On PostgreSQL its statements run in autocommit: no BEGIN before them and no ROLLBACK
    after, two round trips fewer. Each statement still sees what was committed when it
    began, as it would in a READ COMMITTED transaction (the server's default, which the
    engine keeps): a token revoked or an instance changed a moment ago is seen at once. The
    connection's usual isolation comes back when the pool takes it back. SQLite keeps its
    transaction (its BEGIN costs no round trip).
    """
    with rt.db.session() as session:
        if not rt.db.is_sqlite:
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session
