"""The horizon (see the package's docstring) and the hub that moves it: one poller per web
process, the subscriptions of the open streams, and the wake-ups."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, create_engine, select, union
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from bigdata_paas.db import Database
from bigdata_paas.errors import PaasError
from bigdata_paas.models import Event, Instance, LogLine
from bigdata_paas.runtime import Runtime

log = logging.getLogger(__name__)


class TooManyStreams(PaasError):
    status = 503
    code = "too_many_streams"


@dataclass(frozen=True)
class Marks:
    """Newest ids of ``events`` and ``log_lines`` (0 when a table is empty)."""

    events: int = 0
    logs: int = 0

    def covers(self, other: Marks) -> bool:
        return self.events >= other.events and self.logs >= other.logs

    def union(self, other: Marks) -> Marks:
        return Marks(max(self.events, other.events), max(self.logs, other.logs))


@dataclass(frozen=True)
class Message:
    """One message of a stream: an item (``id``, ``kind``, ``data``) or a keep-alive comment."""

    id: int | None = None
    kind: str | None = None
    data: dict | None = None
    comment: str | None = None


class Subscription:
    """A stream's place in the hub: woken when its instance, its user, or (admins) anything
    has new rows."""

    def __init__(self, hub: Hub, instance_id: str | None, user_id: int | None) -> None:
        self.hub, self.instance_id, self.user_id = hub, instance_id, user_id
        self._woken = threading.Event()
        self.closed = False

    def matches(self, instances: set[str], users: set[int]) -> bool:
        if self.instance_id is not None:
            return self.instance_id in instances
        if self.user_id is not None:
            return self.user_id in users
        return True

    def wake(self) -> None:
        self._woken.set()

    def wait(self, timeout: float) -> bool:
        """Sleep until woken or ``timeout``; True when woken. Read ``hub.final`` after this:
        the hub moves the horizon before it wakes anyone."""
        woken = self._woken.wait(max(0.0, timeout))
        self._woken.clear()
        return woken

    def close(self) -> None:
        self.closed = True
        self.hub.unsubscribe(self)
        self.wake()  # a stream waiting on another thread ends now

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_POLL_SQLITE = "SELECT (SELECT max(id) FROM events), (SELECT max(id) FROM log_lines)"
# The snapshot of this statement sees the newest committed ids; clock_timestamp() is read
# after it was taken. Any transaction holding a smaller id began before that moment.
# Transactions that have written (an xid) or are running a statement may hold one; an idle
# reader may not.
_POLL_POSTGRES = """
SELECT (SELECT max(id) FROM events), (SELECT max(id) FROM log_lines), clock_timestamp(),
       (SELECT min(xact_start) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND backend_type = 'client backend'
           AND (backend_xid IS NOT NULL OR state = 'active'))
"""

#: every hub of this process, for :func:`close_all` at shutdown
_HUBS: weakref.WeakSet[Hub] = weakref.WeakSet()


class Hub:
    """The horizon of one database, and the open streams of this process waiting on it."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float = 0.5,
        gap_timeout: float = 10.0,
        limit: int = 200,
        linger: float | None = None,
    ) -> None:
        self.db = db
        self.interval, self.gap_timeout, self.limit = interval, gap_timeout, limit
        # The poller stops this long after the last stream left.
        self.linger = linger if linger is not None else 4 * interval
        self.sqlite = db.is_sqlite
        self._reader: Engine | None = None
        self._lock = threading.Lock()  # subscriptions and the poller thread
        self._poll_lock = threading.Lock()  # one look at a time
        self._subs: set[Subscription] = set()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pending: deque[tuple[datetime, float, Marks]] = deque()
        self._last_seen: Marks | None = None
        self._seen_at = float("-inf")  # when the look that saw _last_seen began
        self._pid = os.getpid()
        #: the horizon: every id up to it is settled (None until the first look)
        self.final: Marks | None = None
        self.closing = False
        #: statements the hub ran to look for new rows (tests and the benchmark read these)
        self.queries = 0
        _HUBS.add(self)

    # -- reading -----------------------------------------------------------------------------

    @property
    def reader(self) -> Engine:
        """The engine streams read with. On SQLite a second engine without BEGIN IMMEDIATE:
        a read needs no write lock (WAL), and a hundred streams must not queue for one."""
        if self._reader is None:
            if self.sqlite:
                self._reader = create_engine(
                    self.db.url, poolclass=NullPool, connect_args={"timeout": 30}
                )
            else:
                self._reader = self.db.engine
        return self._reader

    def connect(self) -> Connection:
        """A connection in autocommit: each statement sees what is committed, holds nothing."""
        conn = self.reader.connect()
        if not self.sqlite:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        return conn

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.connect() as conn, Session(bind=conn, expire_on_commit=False) as session:
            yield session

    # -- the horizon -------------------------------------------------------------------------

    def _poll(self, held: Connection | None = None) -> None:
        """Look at the newest ids once and move the horizon as far as is safe (holds
        ``_poll_lock``); on the poller's ``held`` connection, else on one from the pool."""
        started = time.monotonic()
        with contextlib.nullcontext(held) if held is not None else self.connect() as conn:
            if self.sqlite:
                row = conn.exec_driver_sql(_POLL_SQLITE).one()
                self.queries += 1
                seen = Marks(row[0] or 0, row[1] or 0)
                self._last_seen, self._seen_at = seen, started
                self._advance(seen, conn)
                return
            row = conn.exec_driver_sql(_POLL_POSTGRES).one()
            self.queries += 1
            seen, at, oldest_writer = Marks(row[0] or 0, row[1] or 0), row[2], row[3]
            self._last_seen, self._seen_at = seen, started
            now = time.monotonic()
            self._pending.append((at, now, seen))
            settled: Marks | None = None
            while self._pending:
                looked_at, looked, marks = self._pending[0]
                if oldest_writer is None or oldest_writer > looked_at:
                    pass  # every transaction that was open at that look has ended
                elif now - looked > self.gap_timeout:
                    log.warning(
                        "a transaction open since %s outlived STREAM_GAP_TIMEOUT (%ss); "
                        "streams move past ids it may still commit",
                        oldest_writer,
                        self.gap_timeout,
                    )
                else:
                    break
                self._pending.popleft()
                settled = marks if settled is None else settled.union(marks)
            if settled is not None:
                self._advance(settled, conn)

    def _advance(self, settled: Marks, conn: Connection) -> None:
        old = self.final
        new = settled if old is None else old.union(settled)
        if new == old:
            return
        touched: tuple[set[str], set[int]] | None = None  # None: wake every stream
        if old is not None and self.open_streams:
            query = union(
                select(Event.instance_id, Instance.user_id)
                .join(Instance, Instance.id == Event.instance_id)
                .where(Event.id > old.events, Event.id <= new.events),
                select(LogLine.instance_id, Instance.user_id)
                .join(Instance, Instance.id == LogLine.instance_id)
                .where(LogLine.id > old.logs, LogLine.id <= new.logs),
            )
            self.queries += 1
            rows = conn.execute(query).all()
            touched = ({row[0] for row in rows}, {row[1] for row in rows})
        # The horizon moves first: a stream that subscribes from now on reads up to it, one
        # that subscribed before is in the list below.
        self.final = new
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if touched is None or sub.matches(*touched):
                sub.wake()

    @property
    def horizon(self) -> Marks:
        """The horizon once :meth:`refresh` has returned: streams read only after it."""
        if self.final is None:
            raise RuntimeError("no horizon before the hub's first refresh")
        return self.final

    def refresh(self, max_wait: float = 2.0) -> Marks:
        """A horizon that covers every row committed before this call (as far as
        ``max_wait`` allows on PostgreSQL while older writers are open)."""
        arrived = time.monotonic()
        target: Marks | None = None
        while True:
            with self._poll_lock:
                self._check_fork()
                if target is None and self._seen_at >= arrived:
                    target = self._last_seen  # a look that began after we came: fresh enough
                if target is None or not (self.final and self.final.covers(target)):
                    self._poll()
                    target = target or self._last_seen
                if self.final is not None and target is not None and self.final.covers(target):
                    return self.final
                final = self.final
            # The first horizon is needed whatever it takes (at most the gap timeout).
            limit = max_wait if final is not None else self.gap_timeout + self.interval
            if time.monotonic() - arrived >= limit and final is not None:
                return final
            time.sleep(min(0.02, self.interval))

    # -- subscriptions and the poller ---------------------------------------------------------

    def subscribe(self, instance_id: str | None = None, user_id: int | None = None):
        """Open a subscription (a stream or a long-poll); 503 when this process holds its
        limit of them, or shuts down."""
        if self.closing:
            raise TooManyStreams("the server is shutting down; reconnect")
        self.refresh()
        with self._lock:
            if self.closing:
                raise TooManyStreams("the server is shutting down; reconnect")
            if len(self._subs) >= self.limit:
                raise TooManyStreams(
                    f"this server process holds {self.limit} streams already; retry later "
                    "or use another server process"
                )
            sub = Subscription(self, instance_id, user_id)
            self._subs.add(sub)
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="paas-feeds", daemon=True)
                self._thread.start()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._subs)

    def _check_fork(self) -> None:
        # A forked child (gunicorn --preload) has none of its parent's threads or streams.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread, self._subs = None, set()

    def _run(self) -> None:
        idle_since: float | None = None
        failures = 0
        # The poller keeps one connection while streams are open: one statement a look,
        # without the pool's ping on every checkout.
        conn: Connection | None = None
        try:
            while not self._stop.is_set():
                with self._lock:
                    if self._subs:
                        idle_since = None
                    elif idle_since is None:
                        idle_since = time.monotonic()
                    elif time.monotonic() - idle_since > self.linger:
                        self._thread = None
                        return
                    waiting = bool(self._subs)
                if not waiting:
                    # Nobody to wake: no query (the next stream looks for itself as it opens)
                    if conn is not None:
                        conn.close()
                        conn = None
                    self._stop.wait(self.interval)
                    continue
                try:
                    if conn is None:
                        conn = self.connect()
                    with self._poll_lock:
                        self._poll(conn)
                    failures = 0
                except Exception:  # the database away: streams wait, the poller tries again
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            conn.close()
                        conn = None
                    failures += 1
                    if failures == 1 or failures % 100 == 0:
                        log.exception("looking for new events failed (%d times)", failures)
                self._stop.wait(self.interval * min(failures + 1, 10))
            with self._lock:
                self._thread = None
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def close(self, wait: float = 0) -> None:
        """End every stream of this hub (they return; clients resume elsewhere) and stop the
        poller (waiting up to ``wait`` seconds for it)."""
        with self._lock:
            self.closing = True
            subs = list(self._subs)
            thread = self._thread
            self._stop.set()
        for sub in subs:
            sub.wake()
        if wait and thread is not None:
            thread.join(wait)


def close_all() -> None:
    """End every stream of this process: a web worker is shutting down."""
    for hub in list(_HUBS):
        hub.close()


def hub_for(rt: Runtime) -> Hub:
    """The one hub of a web process: its poller reads the database of ``rt``."""
    return Hub(
        rt.db,
        interval=rt.config.STREAM_POLL_INTERVAL,
        gap_timeout=rt.config.STREAM_GAP_TIMEOUT,
        limit=rt.config.stream_limit,
    )
