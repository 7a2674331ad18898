"""What a stream, a long-poll or a timeline reads, up to the hub's horizon, and how an open
stream waits for more."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bigdata_paas import states
from bigdata_paas.errors import NotFound
from bigdata_paas.models import Event, Instance, LogLine
from bigdata_paas.operations.feeds.hub import Hub, Message, Subscription

#: where a stream of one instance ends: on a launch, running is as far as it goes; with
#: ``?follow=true`` only a failure or the end of the instance ends it
TERMINAL = (states.RUNNING, states.FAILED, states.DESTROYED)
TERMINAL_FOLLOWING = (states.FAILED, states.DESTROYED)
#: rows one read of a stream takes (a long backlog goes out in several reads)
BATCH = 500


def terminal_statuses(follow: bool) -> tuple[str, ...]:
    return TERMINAL_FOLLOWING if follow else TERMINAL


# -- reads ----------------------------------------------------------------------------------


def _events(
    session: Session,
    after: int,
    upto: int,
    *,
    instance_id: str | None = None,
    user_id: int | None = None,
    limit: int | None = BATCH,
) -> list[dict]:
    query = select(Event).where(Event.id > after, Event.id <= upto)
    if instance_id is not None:
        query = query.where(Event.instance_id == instance_id)
    if user_id is not None:
        query = query.join(Instance, Instance.id == Event.instance_id).where(
            Instance.user_id == user_id
        )
    query = query.order_by(Event.id)
    if limit is not None:
        query = query.limit(limit)
    return [event.to_dict() for event in session.scalars(query)]


def _log_lines(session: Session, instance_id: str, after: int, upto: int) -> list[dict]:
    query = (
        select(LogLine)
        .where(LogLine.instance_id == instance_id, LogLine.id > after, LogLine.id <= upto)
        .order_by(LogLine.id)
        .limit(BATCH)
    )
    return [line.to_dict() for line in session.scalars(query)]


@dataclass(frozen=True)
class InstanceState:
    """An instance as a stream opens: its status and its newest event and log line ids."""

    status: str
    last_event: int
    last_log: int


def instance_state(hub: Hub, instance_id: str) -> InstanceState:
    last_event = (
        select(func.max(Event.id)).where(Event.instance_id == instance_id).scalar_subquery()
    )
    last_log = (
        select(func.max(LogLine.id)).where(LogLine.instance_id == instance_id).scalar_subquery()
    )
    with hub.session() as session:
        row = session.execute(
            select(Instance.status, last_event, last_log).where(Instance.id == instance_id)
        ).first()
    if row is None:
        raise NotFound(f"instance {instance_id} not found")
    return InstanceState(row[0], row[1] or 0, row[2] or 0)


def instance_events(
    hub: Hub, instance_id: str, *, after: int | None = None, wait: float = 0, max_age: float = 60
) -> list[dict]:
    """The instance's events after ``after`` (all without), up to the horizon. With ``wait``,
    a long-poll: when there is none yet, answer as soon as one comes, or [] after ``wait``."""
    start = after or 0
    final = hub.refresh()
    with hub.session() as session:
        found = _events(session, start, final.events, instance_id=instance_id, limit=None)
    if found or wait <= 0:
        return found
    deadline = time.monotonic() + min(wait, max_age)
    with hub.subscribe(instance_id=instance_id) as sub:
        while not hub.closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sub.wait(remaining)
            with hub.session() as session:
                found = _events(
                    session, start, hub.horizon.events, instance_id=instance_id, limit=None
                )
            if found:
                return found
    return []


class Stream:
    """The messages of one open stream; ``close()`` (the WSGI server calls it, also when
    the client went away) gives its place back."""

    def __init__(self, sub: Subscription, messages: Iterator[Message]) -> None:
        self.sub, self._messages = sub, messages

    def __iter__(self) -> Iterator[Message]:
        return self._messages

    def close(self) -> None:
        try:
            self._messages.close()  # type: ignore[attr-defined]
        except ValueError:
            pass  # running on another thread: the closed subscription ends it there
        finally:
            self.sub.close()


@dataclass(frozen=True)
class Pace:
    """How a stream waits: keep-alive comments, and how long it may stay open at most."""

    keepalive: float = 15.0
    max_age: float = 3600.0


#: what a quiet stream does next
READ, KEEPALIVE, END = "read", "keepalive", "end"


def _wait(hub: Hub, sub: Subscription, pace: Pace, opened: float, quiet: float) -> str:
    """Sleep until the hub has rows for this stream (READ), a keep-alive is due (KEEPALIVE),
    or the stream must end: too old, or the process shuts down (END). Nothing is read from
    the database here: a quiet stream costs no query."""
    while True:
        now = time.monotonic()
        if hub.closing or sub.closed or now - opened >= pace.max_age:
            return END
        until_keepalive = quiet + pace.keepalive - now
        if until_keepalive <= 0:
            return KEEPALIVE
        if sub.wait(min(until_keepalive, opened + pace.max_age - now)):
            return END if hub.closing or sub.closed else READ


def open_instance_stream(
    hub: Hub, instance_id: str, *, logs: bool, after: int | None, follow: bool, pace: Pace
) -> Stream | None:
    """Open the event (or log) stream of an instance the caller may see; None when it has
    nothing more to say (the instance is terminal and the caller saw everything up to it)."""
    state = instance_state(hub, instance_id)
    terminal = terminal_statuses(follow)
    cursor = after or 0
    if state.status in terminal and cursor >= (state.last_log if logs else state.last_event):
        return None
    sub = hub.subscribe(instance_id=instance_id)
    body = _log_messages if logs else _event_messages
    return Stream(sub, body(hub, sub, Opening(instance_id, state, terminal), cursor, pace))


class Opening(NamedTuple):
    """What an instance's stream knew when it opened."""

    instance_id: str
    state: InstanceState
    terminal: tuple[str, ...]


def _until_more(
    hub: Hub, sub: Subscription, pace: Pace, opened: float, quiet: float
) -> Generator[Message, None, float | None]:
    """Keep-alives while a stream waits for rows: returns when the last one went out, or None
    when the stream must end."""
    while (step := _wait(hub, sub, pace, opened, quiet)) == KEEPALIVE:
        yield Message(comment="keep-alive")
        quiet = time.monotonic()
    return None if step == END else quiet


def _event_messages(
    hub: Hub, sub: Subscription, opening: Opening, cursor: int, pace: Pace
) -> Iterator[Message]:
    instance_id, state, terminal = opening
    opened = quiet = time.monotonic()
    ended = False
    while not (hub.closing or sub.closed):
        final = hub.horizon
        with hub.session() as session:
            rows = _events(session, cursor, final.events, instance_id=instance_id)
        for row in rows:
            yield Message(row["id"], row["status"], row)
            cursor = row["id"]
            # A terminal status older than what the instance was at the opening (a failure
            # before a retry) is history, not the end.
            ended = ended or (row["id"] >= state.last_event and row["status"] in terminal)
        if rows:
            quiet = time.monotonic()
        if len(rows) == BATCH:
            continue
        if ended or (state.status in terminal and final.events >= state.last_event):
            return
        waited = yield from _until_more(hub, sub, pace, opened, quiet)
        if waited is None:
            return
        quiet = waited


def _log_messages(
    hub: Hub, sub: Subscription, opening: Opening, cursor: int, pace: Pace
) -> Iterator[Message]:
    instance_id, state, terminal = opening
    opened = quiet = time.monotonic()
    seen_event, ended = state.last_event, False
    while not (hub.closing or sub.closed):
        final = hub.horizon
        with hub.session() as session:
            lines = _log_lines(session, instance_id, cursor, final.logs)
            statuses = []
            if not ended and final.events > seen_event:
                statuses = [
                    e["status"]
                    for e in _events(
                        session, seen_event, final.events, instance_id=instance_id, limit=None
                    )
                ]
                seen_event = final.events
        for line in lines:
            yield Message(line["id"], "log", line)
            cursor = line["id"]
        if lines:
            quiet = time.monotonic()
        if len(lines) == BATCH:
            continue
        if ended or (state.status in terminal and final.logs >= state.last_log):
            return
        if any(status in terminal for status in statuses):
            # Every line written before that status change is below this horizon's log
            # mark; one more read takes them, then the stream ends.
            ended = True
            continue
        waited = yield from _until_more(hub, sub, pace, opened, quiet)
        if waited is None:
            return
        quiet = waited


def open_global_stream(hub: Hub, *, user_id: int | None, after: int | None, pace: Pace) -> Stream:
    """Every instance's events (``user_id`` None, for admins) or one user's; from ``after``,
    or from now."""
    sub = hub.subscribe(user_id=user_id)
    start = hub.horizon.events if after is None else after
    return Stream(sub, _global_messages(hub, sub, user_id, start, pace))


def _global_messages(
    hub: Hub, sub: Subscription, user_id: int | None, cursor: int, pace: Pace
) -> Iterator[Message]:
    opened = quiet = time.monotonic()
    # Where this stream starts, as an id without data: a client that reconnects before any
    # event came resumes from here, not from a later "now".
    yield Message(id=cursor)
    while not (hub.closing or sub.closed):
        final = hub.horizon
        with hub.session() as session:
            rows = _events(session, cursor, final.events, user_id=user_id)
        for row in rows:
            yield Message(row["id"], row["status"], row)
            cursor = row["id"]
        if rows:
            quiet = time.monotonic()
        if len(rows) == BATCH:
            continue
        waited = yield from _until_more(hub, sub, pace, opened, quiet)
        if waited is None:
            return
        quiet = waited
