"""The instance status machine: every allowed transition lives in this one table."""

from __future__ import annotations

PENDING = "pending"
PREPARED = "prepared"
SUBMITTED = "submitted"
QUEUED = "queued"
SCHEDULED = "scheduled"
RUNNING = "running"
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
    FAILED,
    DESTROYING,
    DESTROYED,
)

#: step name -> (status it starts from, status it moves to on success)
STEPS: dict[str, tuple[str, str]] = {
    "prepare": (PENDING, PREPARED),
    "submit": (PREPARED, SUBMITTED),
    "queue": (SUBMITTED, QUEUED),
    "schedule": (QUEUED, SCHEDULED),
    "run": (SCHEDULED, RUNNING),
    "destroy": (DESTROYING, DESTROYED),
}

#: statuses from which the pipeline may still fail an instance
IN_FLIGHT = (PENDING, PREPARED, SUBMITTED, QUEUED, SCHEDULED)

#: statuses a DELETE may start from
DESTROYABLE = (*IN_FLIGHT, RUNNING, FAILED)

#: statuses that hold or may hold allocations, or still move: a service is in use
LIVE = (*IN_FLIGHT, RUNNING, DESTROYING)

TERMINAL = (DESTROYED,)
