"""The queue as an operator reads it: the instances waiting for capacity, in the order the
scheduler tries them, each with why it waits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bigdata_paas import states
from bigdata_paas.models import Instance
from bigdata_paas.models.base import iso
from bigdata_paas.operations.lifecycle.queueing import QUEUE_ORDER
from bigdata_paas.runtime import Runtime


def waiting(rt: Runtime, limit: int = 500) -> list[dict]:
    """Queued instances, first to be placed first (the order queue passes try them in)."""
    with rt.db.session() as session:
        rows = session.scalars(
            select(Instance)
            .options(selectinload(Instance.user))
            .where(Instance.status == states.QUEUED)
            .order_by(*QUEUE_ORDER)
            .limit(limit)
        )
        return [{**row.to_dict(with_nodes=False), "queued_at": iso(row.queued_at)} for row in rows]
