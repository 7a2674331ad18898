"""Wake the queue when capacity changes: once per commit, and once per wave of changes.

Every operation that frees or adds capacity (an instance released, a host added, undrained
or deleted, a network added) calls ``wake_queue`` inside its transaction. The claim row
``drain_queue`` coalesces the wake-ups: the first change after a drain started asks for a
new drain (published after the commit); the next ones find it asked for and publish
nothing, because that drain has not started yet and will see their capacity too. A drain
clears the claim when it starts, under the placement lock that releases take, so a change
committed after its look at the queue asks again. A wave of 100 destroys costs one or two
queue passes, not 100.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from bigdata_paas import states
from bigdata_paas.db import changed_rows
from bigdata_paas.messaging.publish import after_commit
from bigdata_paas.models import Claim, Instance, utcnow

DRAIN = "drain_queue"
#: a drain asked for this long ago and never started (its message was lost) is asked again
ASK_AGAIN_AFTER = timedelta(seconds=30)


def wake_queue(session: Session) -> bool:
    """Ask for a queue drain after this transaction commits, unless one is already asked
    for or nothing is queued; True if this call asked."""
    now = utcnow()
    asked = changed_rows(
        session,
        update(Claim)
        .where(
            Claim.name == DRAIN,
            or_(Claim.at.is_(None), Claim.at < now - ASK_AGAIN_AFTER),
            exists(select(Instance.id).where(Instance.status.in_(states.WAITING))),
        )
        .values(at=now)
        .execution_options(synchronize_session=False),
    )
    if asked:
        after_commit(session, f"pipeline.{DRAIN}")
    return bool(asked)


def drain_started(session: Session) -> None:
    """A drain looks at the queue now: later changes must ask for another one."""
    session.execute(
        update(Claim)
        .where(Claim.name == DRAIN)
        .values(at=None)
        .execution_options(synchronize_session=False)
    )
