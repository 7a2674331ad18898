"""The audit trail: every admin action, with who did it, when, and to what.

``record`` adds the line to the caller's session, so it is committed with the change it
describes or not at all: a refused or failed change leaves no line. Content that will run or
render (a template, an options document, an orquestrator) is recorded as its SHA-256, so the
trail says exactly which version was uploaded without keeping a copy of it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bigdata_paas.models import AuditEvent
from bigdata_paas.runtime import Runtime


def digest(content: str | bytes | Any) -> str:
    """SHA-256 of text as stored (UTF-8), or of a JSON document in canonical form."""
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    elif not isinstance(content, bytes):
        content = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(content).hexdigest()


def record(session: Session, actor: str, action: str, target: str, **details: Any) -> None:
    """Add one line to the trail in ``session`` (committed with the change, by the caller)."""
    session.add(
        AuditEvent(
            actor=actor[:64], action=action[:64], target=target[:255], details=details or None
        )
    )


def list_events(
    rt: Runtime,
    page: int = 1,
    per_page: int | None = None,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
) -> dict:
    """One page of the trail, newest first, filtered by whatever is given."""
    size = per_page or rt.config.PAGE_SIZE
    query = select(AuditEvent)
    for value, column in (
        (action, AuditEvent.action),
        (actor, AuditEvent.actor),
        (target, AuditEvent.target),
    ):
        if value is not None:
            query = query.where(column == value)
    with rt.db.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.scalars(
            query.order_by(AuditEvent.id.desc()).offset((page - 1) * size).limit(size)
        )
        items = [event.to_dict() for event in rows]
    return {"items": items, "page": page, "per_page": size, "total": total}
