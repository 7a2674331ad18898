"""The instance status machine: every allowed transition is derived from the tables below.

``advance()`` (operations/lifecycle/transitions.py) refuses any move that is not in
``TRANSITIONS``; the launch chain, the sweep's next step and retry's restart point are read
from ``LAUNCH`` too, so a new step or status is one line here, not a hunt through the code.
"""

from __future__ import annotations

from dataclasses import dataclass

PENDING = "pending"
PREPARED = "prepared"
SUBMITTED = "submitted"
QUEUED = "queued"
SCHEDULED = "scheduled"
RUNNING = "running"
DEGRADED = "degraded"
UPDATING = "updating"
FAILED = "failed"
DESTROYING = "destroying"
DESTROYED = "destroyed"

STATUSES = (
    PENDING,
    PREPARED,
    SUBMITTED,
    QUEUED,
    SCHEDULED,
    RUNNING,
    DEGRADED,
    UPDATING,
    FAILED,
    DESTROYING,
    DESTROYED,
)


@dataclass(frozen=True)
class Step:
    """One step of the launch chain: it moves an instance from ``source`` to ``target``.

    A step that cannot do its work fails the instance (``source -> failed``); a retry of
    that failure starts the chain again at the step ``retry_at``.
    """

    name: str
    source: str
    target: str
    retry_at: str


#: the launch chain, in order (a Celery chain of these task names)
LAUNCH = (
    Step("prepare", PENDING, PREPARED, retry_at="prepare"),
    Step("submit", PREPARED, SUBMITTED, retry_at="submit"),
    Step("queue", SUBMITTED, QUEUED, retry_at="queue"),
    # A failure releases every allocation: a retry of these is placed again from the queue.
    Step("schedule", QUEUED, SCHEDULED, retry_at="queue"),
    Step("run", SCHEDULED, RUNNING, retry_at="queue"),
)
STEPS = {s.name: s for s in LAUNCH}
LAUNCH_STEPS = tuple(s.name for s in LAUNCH)

#: the status a launch is created in (the "launch" event; not a transition)
INITIAL = LAUNCH[0].source

#: statuses from which the pipeline still moves an instance on (or fails it)
IN_FLIGHT = tuple(s.source for s in LAUNCH)

#: in-flight statuses that wait for capacity, not for a message: the sweep drains the queue
#: for them instead of publishing their step again
WAITING = (QUEUED,)

#: a running instance with a node on a host that went down, or a node its agent no longer
#: finds: it runs again once every node is back (``health`` moves it both ways)
UP = (RUNNING, DEGRADED)

#: statuses a DELETE may start from
DESTROYABLE = (*IN_FLIGHT, *UP, FAILED)

#: statuses that hold or may hold allocations, or still move: a service is in use
LIVE = (*IN_FLIGHT, *UP, UPDATING, DESTROYING)

#: statuses nothing moves on from by itself (a follower of a launch can stop at these)
SETTLED = (*UP, FAILED, DESTROYED)

#: the status nothing ever leaves
TERMINAL = (DESTROYED,)


def _transitions() -> frozenset[tuple[str, str, str]]:
    edges: set[tuple[str, str, str]] = set()
    for s in LAUNCH:
        edges.add((s.name, s.source, s.target))
        edges.add((s.name, s.source, FAILED))
    for source in DESTROYABLE:
        edges.add(("destroy", source, DESTROYING))
        # the broker could not take the destroy: the instance goes back to where it was
        edges.add(("destroy", DESTROYING, source))
    edges.add(("destroy", DESTROYING, DESTROYED))
    edges.add(("health", RUNNING, DEGRADED))
    edges.add(("health", DEGRADED, RUNNING))
    # a resize begins from running and ends running: resized, rolled back, or not started
    # (the broker could not take it)
    edges.add(("resize", RUNNING, UPDATING))
    edges.add(("resize", UPDATING, RUNNING))
    for s in LAUNCH:
        restart = STEPS[s.retry_at].source
        edges.add(("retry", FAILED, restart))
        # the broker could not take the retry: the instance fails again as it was
        edges.add(("retry", restart, FAILED))
    return frozenset(edges)


#: every allowed (step, from status, to status)
TRANSITIONS = _transitions()


class IllegalTransition(RuntimeError):
    """A step tried a move the status machine does not allow: a bug, never user input."""


def sources(step: str, target: str) -> tuple[str, ...]:
    """The statuses ``step`` may move an instance to ``target`` from; raise if none."""
    found = tuple(s for s in STATUSES if (step, s, target) in TRANSITIONS)
    if not found:
        raise IllegalTransition(f"no transition of step {step!r} leads to {target!r}")
    return found


def check(step: str, source: str, target: str) -> None:
    """Raise IllegalTransition unless ``step`` may move ``source`` to ``target``."""
    if (step, source, target) not in TRANSITIONS:
        raise IllegalTransition(f"step {step!r} may not move {source!r} to {target!r}")


def can_fail(step: str) -> bool:
    """Whether ``step`` fails an instance (a launch step) rather than leaving it alone."""
    return step in STEPS


def chain_from(step: str) -> tuple[str, ...]:
    """The launch chain's steps from ``step`` on."""
    return LAUNCH_STEPS[LAUNCH_STEPS.index(step) :]


#: the step that moves an instance on from each in-flight status that waits for a message
NEXT_STEP = {s.source: s.name for s in LAUNCH if s.source not in WAITING}

#: a failed launch step -> (the status a retry restarts from, the first step it publishes)
RETRY_FROM = {s.name: (STEPS[s.retry_at].source, s.retry_at) for s in LAUNCH}
