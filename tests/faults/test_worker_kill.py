"""Issue 5, faults 1: a worker SIGKILLed in the middle of each step of the pipeline.

The kill lands in the intended step without hooks in the product. The test runs the steps
before the target itself (the product's own use cases, as a worker would), so the worker's
chain skips them. For prepare ... schedule the test then holds the instance's row lock: the
step's compare-and-set waits on it mid-transaction (PostgreSQL shows the waiting UPDATE; for
schedule, after the allocations were written) and the worker is killed there. For run, the
orquestrator's first start waits until its worker dies. A new worker takes over: RabbitMQ
redelivers the unacknowledged step (acks_late), and the run, acknowledged on receipt, is
restarted by the sweep once its heartbeat stops.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from bigdata_paas import states
from bigdata_paas.operations import lifecycle
from bigdata_paas.orquestrator.runner import reachable_workdir
from tests.conftest import Worker, wait_for_status
from tests.faults.conftest import (
    Deployment,
    allocated_total,
    audit_allocations,
    purge_queue,
    row_lock,
    wait_until,
    waiting_statements,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.services]

#: the use case of each step the test runs itself before the target step
USE_CASES = {
    "prepare": lifecycle.STEP_RUNNERS["prepare"],
    "submit": lifecycle.STEP_RUNNERS["submit"],
    "queue": lifecycle.STEP_RUNNERS["queue"],
    "schedule": lifecycle.STEP_RUNNERS["schedule"],
}
#: (step, status) of every status change of a launch, each to be recorded exactly once
TRANSITIONS = [(step, states.STEPS[step].target) for step in states.LAUNCH_STEPS]
TASK_LINE = re.compile(r"Task (pipeline\.\w+)\[([0-9a-f-]+)\] (received|succeeded|failed|raised)")


@pytest.fixture
def fault_env(services_env):
    """A fast heartbeat, so that the sweep finds a killed run lost within seconds."""
    return {
        **services_env,
        "PAAS_HEARTBEAT_INTERVAL": "0.5",
        "PAAS_HEARTBEAT_TIMEOUT": "3",
        "PAAS_STALE_AFTER": "1",
    }


def in_flight(worker_log: str) -> list[str]:
    """Names of the tasks the worker received and never finished."""
    open_tasks: dict[str, str] = {}
    for name, task_id, what in TASK_LINE.findall(worker_log):
        if what == "received":
            open_tasks[task_id] = name
        else:
            open_tasks.pop(task_id, None)
    return sorted(open_tasks.values())


def run_steps_before(deployment: Deployment, instance_id: str, step: str) -> None:
    """Move the instance to the status ``step`` starts from, as workers would."""
    for earlier in states.LAUNCH_STEPS[: states.LAUNCH_STEPS.index(step)]:
        assert USE_CASES[earlier](deployment.rt, instance_id) == states.STEPS[earlier].target


def wait_blocked(deployment: Deployment, worker: Worker, step: str) -> None:
    """Wait until ``worker`` is inside ``step``, its compare-and-set waiting on the row."""
    url = deployment.env["PAAS_DATABASE_URL"]
    wait_until(
        lambda: [q for q in waiting_statements(url) if q.startswith("UPDATE instances")],
        f"the worker's {step} to wait on the instance row",
    )
    assert in_flight(worker.output()) == [f"pipeline.{step}"], worker.output()[-3000:]


def kill_mid_transaction(deployment: Deployment, instance_id: str, step: str, log) -> None:
    """Start a worker, let it block in ``step``'s compare-and-set, and SIGKILL it there."""
    with row_lock(deployment.env["PAAS_DATABASE_URL"], instance_id):
        worker = Worker(deployment.env, log, concurrency=1).start()
        try:
            wait_blocked(deployment, worker, step)
        finally:
            worker.stop()  # SIGKILL to its process group, pool processes included


def pool_processes(worker: Worker) -> list[int]:
    """Pids of the worker's pool processes (its main process's children)."""
    pid = worker.process.pid
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def kill_mid_start(deployment: Deployment, instance_id: str, log) -> None:
    """Start a worker, let the orquestrator's first start begin, and SIGKILL the worker."""
    workdir = reachable_workdir(deployment.rt.config.work_path / instance_id)
    worker = Worker(deployment.env, log, concurrency=1).start()
    try:
        wait_until(lambda: (workdir / "first-start").exists(), "the first start to begin")
        assert in_flight(worker.output()) == ["pipeline.run"], worker.output()[-3000:]
    finally:
        worker.stop()


def sweep_until(deployment: Deployment, instance_id: str, wanted: set[str]) -> dict:
    """Run the sweep, as beat would, until the instance reaches a ``wanted`` status."""

    def swept():
        with deployment.app.app_context():
            lifecycle.recovery.sweep(deployment.rt)
        body = deployment.instance(instance_id)
        return body if body["status"] in wanted else None

    return wait_until(swept, f"the sweep to drive {instance_id} on", timeout=90, interval=0.5)


@pytest.mark.parametrize("step", states.LAUNCH_STEPS)
def test_a_worker_killed_during_a_step_leaves_nothing_stuck_leaked_or_doubled(
    step, fault_env, tmp_path
):
    deployment = Deployment(fault_env)
    replacement = None
    try:
        # only the chain in the queue (a drain is asked for only when something is queued)
        purge_queue(fault_env, "pipeline")
        # no worker yet: the chain waits in RabbitMQ
        response = deployment.launch(hang=step == "run")
        assert response.status_code == 202, response.get_json()
        instance_id = response.get_json()["id"]
        run_steps_before(deployment, instance_id, step)
        before = states.STEPS[step].source
        if step == "run":
            kill_mid_start(deployment, instance_id, tmp_path / "killed.log")
        else:
            kill_mid_transaction(deployment, instance_id, step, tmp_path / "killed.log")
        # killed before the step committed: nothing of it is left
        assert deployment.instance(instance_id)["status"] == before
        assert not audit_allocations(deployment.rt)

        replacement = Worker(fault_env, tmp_path / "replacement.log").start()
        if step == "run":
            body = sweep_until(deployment, instance_id, {"running", "failed"})
        else:
            body = wait_for_status(
                deployment.client, deployment.admin, instance_id, {"running", "failed"}
            )
        assert body["status"] == "running", body.get("error")
        events = deployment.events(instance_id)
        changes = [(e["step"], e["status"]) for e in events]
        assert all(changes.count(t) == 1 for t in TRANSITIONS), changes
        starts = [e for e in events if e["message"] == "orquestrator start began"]
        assert len(starts) == (2 if step == "run" else 1), changes
        assert audit_allocations(deployment.rt) == {}
        assert allocated_total(deployment.rt) == (1, 1, 1)

        response = deployment.call("DELETE", f"/instances/{instance_id}")
        assert response.status_code == 202, response.get_json()
        wait_for_status(deployment.client, deployment.admin, instance_id, {"destroyed"})
        assert audit_allocations(deployment.rt) == {}
        assert allocated_total(deployment.rt) == (0, 0, 0)
    finally:
        if replacement is not None:
            replacement.stop()
        deployment.close()


def test_a_pool_process_killed_during_schedule_is_redelivered_to_its_worker(fault_env, tmp_path):
    """Only the pool process dies: the worker requeues the message (reject_on_worker_lost)."""
    deployment = Deployment(fault_env)
    worker = None
    try:
        purge_queue(fault_env, "pipeline")
        response = deployment.launch()
        assert response.status_code == 202, response.get_json()
        instance_id = response.get_json()["id"]
        run_steps_before(deployment, instance_id, "schedule")
        with row_lock(fault_env["PAAS_DATABASE_URL"], instance_id):
            worker = Worker(fault_env, tmp_path / "worker.log", concurrency=1).start()
            wait_blocked(deployment, worker, "schedule")
            (pool,) = pool_processes(worker)
            os.kill(pool, signal.SIGKILL)
            wait_until(lambda: "WorkerLostError" in worker.output(), "the worker to see it")
            assert deployment.instance(instance_id)["status"] == "queued"
        body = wait_for_status(
            deployment.client, deployment.admin, instance_id, {"running", "failed"}
        )
        assert body["status"] == "running", body.get("error")
        schedules = [t for t in TASK_LINE.findall(worker.output()) if t[0] == "pipeline.schedule"]
        assert [what for _name, _id, what in schedules] == ["received", "received", "succeeded"]
        assert len({task_id for _name, task_id, _what in schedules}) == 1  # the same message
        assert [n["host"] for n in body["nodes"]] == ["h0"]
        assert audit_allocations(deployment.rt) == {}
        assert allocated_total(deployment.rt) == (1, 1, 1)
    finally:
        if worker is not None:
            worker.stop()
        deployment.close()


def test_a_worker_killed_during_the_health_check_is_not_left_scheduled(fault_env, tmp_path):
    """Killed after start, while the node's check port is awaited: the run is lost too."""
    deployment = Deployment(fault_env)
    replacement = None
    try:
        purge_queue(fault_env, "pipeline")
        # a port nobody answers on: the health check waits PAAS_HEALTH_TIMEOUT, then fails
        response = deployment.launch(check_port=9)
        assert response.status_code == 202, response.get_json()
        instance_id = response.get_json()["id"]
        run_steps_before(deployment, instance_id, "run")
        worker = Worker(fault_env, tmp_path / "killed.log", concurrency=1).start()
        try:
            wait_until(lambda: log_lines(deployment, instance_id), "the start to end")
            assert in_flight(worker.output()) == ["pipeline.run"], worker.output()[-3000:]
            assert deployment.instance(instance_id)["status"] == "scheduled"
        finally:
            worker.stop()
        replacement = Worker(fault_env, tmp_path / "replacement.log").start()
        body = sweep_until(deployment, instance_id, {"running", "failed"})
        assert body["status"] == "failed", body
        assert body["error"]["step"] == "run"
        assert "; health check failed: did not answer" in body["error"]["reason"], body["error"]
        messages = [e["message"] for e in deployment.events(instance_id)]
        assert messages.count("orquestrator start began") == 2, messages
        assert audit_allocations(deployment.rt) == {}
        assert allocated_total(deployment.rt) == (0, 0, 0)
    finally:
        if replacement is not None:
            replacement.stop()
        deployment.close()


def log_lines(deployment: Deployment, instance_id: str) -> list[str]:
    response = deployment.call("GET", f"/instances/{instance_id}/logs")
    return [line["line"] for line in response.get_json()["lines"]]
