"""Whether the platform's dependencies answer: the database and the broker."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as WaitedTooLong

from sqlalchemy import text

from bigdata_paas.runtime import Runtime

log = logging.getLogger(__name__)

UP, DOWN = "ok", "unreachable"


def check(rt: Runtime) -> dict[str, str]:
    """``{status, web, database, broker}``: each part ``ok`` or ``unreachable``, and the
    status ``ok`` or ``degraded``. Never raises: a failure of any kind is a part down."""
    parts = {"web": UP, "database": _database(rt), "broker": _broker(rt)}
    return {"status": "degraded" if DOWN in parts.values() else "ok", **parts}


def ready(rt: Runtime) -> dict:
    """``{status, database, broker, failed}`` for a readiness probe: both looked at at once,
    and a part that has not answered within ``PROBE_TIMEOUT`` seconds counts as down (a
    probe that hangs is a probe that fails late). Never raises."""
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz")
    try:
        pending = {"database": pool.submit(_database, rt), "broker": pool.submit(_broker, rt)}
        parts = {}
        for name, future in pending.items():
            try:
                parts[name] = future.result(timeout=rt.config.PROBE_TIMEOUT)
            except WaitedTooLong:
                log.warning("readyz: the %s did not answer in time", name)
                parts[name] = DOWN
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a hung look ends on its own
    failed = [name for name, state in parts.items() if state != UP]
    return {"status": "unready" if failed else "ready", **parts, "failed": failed}


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
