"""The launch pipeline's steps as use cases, one concern a module.

- ``transitions``: advance (the guarded status change), note, fail, waking the queue;
- ``steps``: prepare, submit and queue;
- ``queueing``: passes over the queue that place instances (schedule, drain);
- ``commands``: running an orquestrator command (logs, heartbeat);
- ``running``: the run and destroy steps (start, health checks, stop, release);
- ``nodes``: starting and stopping nodes on their hosts' agents;
- ``agents``: what the agents report (node states, heartbeats), silent hosts, reconcile;
- ``recovery``: the sweep that drives on what a lost message or a dead worker left behind.

Each step takes an instance id, re-reads the row and compare-and-sets its status, so a
redelivered message (acks_late) or a step that lost a race with a destroy is harmless.
Long work (rendering, orquestrators) happens outside any transaction: SQLite holds its write
lock for a transaction's life.
"""

from bigdata_paas.operations.lifecycle import queueing, recovery, running, steps

#: the use case behind each step of the chain, and destroy, by the step's name
STEP_RUNNERS = {
    "prepare": steps.prepare,
    "submit": steps.submit,
    "queue": steps.queue,
    "schedule": queueing.schedule,
    "run": running.run,
    "destroy": running.destroy,
}

__all__ = ["STEP_RUNNERS", "queueing", "recovery", "running", "steps"]
