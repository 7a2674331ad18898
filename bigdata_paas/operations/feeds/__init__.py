"""Event and log feeds: what event streams, long-polls and timelines read, and when.

A client resumes a stream after the last id it saw, so a feed may only hand out an id once
every smaller id is settled: committed, or never to be. The *horizon* is the largest such id
(of ``events`` and of ``log_lines``), and every read here stops at it.

* SQLite: every writer takes the write lock when its transaction begins (``BEGIN
  IMMEDIATE``, see db.py), so transactions that insert rows commit in id order and the
  newest committed id is the horizon. Ids are never reused (AUTOINCREMENT, migration 0003).
* PostgreSQL: ids come from a sequence when a row is inserted, and transactions commit in
  any order, so the newest committed id may have an older one still in flight. A look at
  the newest ids taken at time ``t`` becomes the horizon once no transaction that began
  before ``t`` and may write is still open (``pg_stat_activity``); a transaction that begins
  later can only take larger ids. A writer open longer than ``STREAM_GAP_TIMEOUT`` is given
  up on (and logged): an event it commits after that is in the database but not in the
  streams that already passed its id.

One :class:`Hub` per web process looks for new rows with one query every
``STREAM_POLL_INTERVAL`` seconds while streams are open (none while none is), moves the
horizon, and wakes only the streams whose instance (or user) has new rows; a stream then
reads its rows. A quiet stream therefore costs no query at all, however many are open.
"""

from bigdata_paas.operations.feeds.hub import (
    Hub,
    Marks,
    Message,
    Subscription,
    TooManyStreams,
    close_all,
    hub_for,
)
from bigdata_paas.operations.feeds.streams import (
    InstanceState,
    Pace,
    Stream,
    instance_events,
    instance_state,
    open_global_stream,
    open_instance_stream,
    terminal_statuses,
)

__all__ = [
    "Hub",
    "InstanceState",
    "Marks",
    "Message",
    "Pace",
    "Stream",
    "Subscription",
    "TooManyStreams",
    "close_all",
    "hub_for",
    "instance_events",
    "instance_state",
    "open_global_stream",
    "open_instance_stream",
    "terminal_statuses",
]
