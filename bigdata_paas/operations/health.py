"""Whether the platform's dependencies answer: the database and the broker."""

from __future__ import annotations

import logging

from sqlalchemy import text

from bigdata_paas.runtime import Runtime

log = logging.getLogger(__name__)

UP, DOWN = "ok", "unreachable"


def check(rt: Runtime) -> dict[str, str]:
    """``{status, web, database, broker}``: each part ``ok`` or ``unreachable``, and the
    status ``ok`` or ``degraded``. Never raises: a failure of any kind is a part down."""
    parts = {"web": UP, "database": _database(rt), "broker": _broker(rt)}
    return {"status": "degraded" if DOWN in parts.values() else "ok", **parts}


def _database(rt: Runtime) -> str:
    try:
        with rt.db.session() as session:
            session.execute(text("SELECT 1"))
            session.commit()
    except Exception as exc:  # any failure means unreachable
        log.warning("health: the database does not answer: %s", exc)
        return DOWN
    return UP


def _broker(rt: Runtime) -> str:
    try:
        with rt.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=rt.config.PUBLISH_TIMEOUT)
    except Exception as exc:  # any failure means unreachable
        log.warning("health: the broker does not answer: %s", exc)
        return DOWN
    return UP
