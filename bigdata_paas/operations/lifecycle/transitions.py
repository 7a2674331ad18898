"""Status transitions: the guarded UPDATE that opens every step, events, and failing."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, Update, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from bigdata_paas import states
from bigdata_paas.db import changed_rows
from bigdata_paas.models import Event, Instance, utcnow
from bigdata_paas.operations import allocations
from bigdata_paas.runtime import Runtime

log = logging.getLogger(__name__)


def advance(
    session: Session,
    instance_id: str,
    step: str,
    to: str,
    message: str = "",
    *,
    source: str | None = None,
    where: tuple = (),
    **values,
) -> bool:
    """Move the instance to ``to`` if the status machine lets ``step`` move it there from
    its current status (or from ``source`` only, when given) and the extra conditions
    ``where`` hold (e.g. the run is still this attempt's); record the event.

    A move the machine lacks raises ``states.IllegalTransition``; a status that moved on
    meanwhile (a redelivered message, a lost race) is no error: False, nothing changed.
    """
    if source is None:
        sources = states.sources(step, to)
    else:
        states.check(step, source, to)
        sources = (source,)
    statement = _guarded_update(tuple(sorted(values)))
    if where:
        statement = statement.where(*where)
    params = {f"set_{name}": value for name, value in values.items()}
    params.update(instance_id=instance_id, sources=list(sources), to=to, at=utcnow())
    moved = changed_rows(session, statement, params)
    if moved == 1:
        note(session, instance_id, step, to, message)
        log.info("instance %s: %s by %s", instance_id, to, step, extra={"instance_id": instance_id})
    return moved == 1


# Every step opens with advance(): its statements are plain Core on the tables, built once per
# set of columns (not an ORM bulk UPDATE built anew and an Event flushed by the unit of work),
# which is most of what a guarded move cost the worker. Nothing reads them back through the
# session, so the identity map has nothing to keep in step (as synchronize_session=False).
# Every event is written by INSERT_EVENT: by note() through a session, and a launch's first one
# on PostgreSQL in its script on the driver (operations/instances.py), which runs it as
# compiled: every column given, none left for Core to fill in.
INSERT_EVENT = insert(cast(Table, Event.__table__)).values(
    {name: bindparam(name) for name in ("instance_id", "at", "step", "status", "message")}
)


def event_row(
    instance_id: str, step: str, status: str, message: str, at: datetime | None = None
) -> dict:
    """INSERT_EVENT's parameters for an event at ``at`` (now by default)."""
    return {
        "instance_id": instance_id,
        "at": at or utcnow(),
        "step": step,
        "status": status,
        "message": message,
    }


@functools.lru_cache(maxsize=64)
def _guarded_update(columns: tuple[str, ...]) -> Update:
    """``UPDATE instances SET status, updated_at[, columns] WHERE id = :instance_id AND status
    IN :sources``, for the extra ``columns`` given (as ``set_<column>`` parameters)."""
    table = cast(Table, Instance.__table__)
    extra = {name: bindparam(f"set_{name}", type_=table.c[name].type) for name in columns}
    return (
        update(table)
        .where(table.c.id == bindparam("instance_id"))
        .where(table.c.status.in_(bindparam("sources", expanding=True)))
        .values(status=bindparam("to"), updated_at=bindparam("at"), **extra)
    )


def note(session: Session, instance_id: str, step: str, status: str, message: str) -> None:
    """Record an event that changes no status (a wait, a retry of a lost command)."""
    session.execute(INSERT_EVENT, event_row(instance_id, step, status, message))


def status_of(session: Session, instance_id: str) -> str | None:
    return session.scalar(select(Instance.status).where(Instance.id == instance_id))


def fail(rt: Runtime, instance_id: str, step: str, reason: str, *, where: tuple = ()) -> bool:
    """Fail the instance at launch step ``step`` with a reason and release what it holds.

    Only a launch step fails an instance, and only from the status it starts from; anything
    else (a destroy that crashed, a step whose instance moved on) leaves it alone: False.
    """
    if not states.can_fail(step):
        return False
    with rt.db.session() as session:
        allocations.lock_placement(session)  # first, as placements do: releases take it too
        if not advance(
            session,
            instance_id,
            step,
            states.FAILED,
            reason,
            failed_step=step,
            error=reason[:4000],
            wait_reason=None,
            where=where,
        ):
            return False
        allocations.release(session, instance_id)
        session.commit()
    log.info("instance %s failed at %s: %s", instance_id, step, reason)
    return True


def claim_work(session: Session, instance_id: str, status: str, heartbeat_timeout: float) -> bool:
    """Take the work of an instance in ``status`` (a destroy, a resize) unless a live
    heartbeat says another worker is doing it: True when this one is now the worker."""
    now = utcnow()
    stale = now - timedelta(seconds=heartbeat_timeout)
    return bool(
        changed_rows(
            session,
            update(Instance)
            .where(
                Instance.id == instance_id,
                Instance.status == status,
                or_(Instance.heartbeat_at.is_(None), Instance.heartbeat_at < stale),
            )
            .values(heartbeat_at=now)
            .execution_options(synchronize_session=False),
        )
    )
