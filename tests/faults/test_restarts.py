"""Issue 5, faults 3: web, worker and broker restarts leave nothing stuck.

Real processes: gunicorn, celery workers and celery beat (a sweep every second), on
PostgreSQL and a private RabbitMQ node. Every lost message leaves an instance that only the
database knows about, and the sweep must drive each one on:

- gunicorn SIGKILLed between a launch's commit and its publish (RabbitMQ blocks publishers,
  so the request waits right after the commit), then started again;
- messages lost with the broker (the queues purged) while instances sit in every in-flight
  status: pending, prepared, submitted, queued, scheduled, destroying;
- a worker SIGKILLed during an orquestrator start, then RabbitMQ stopped and started again.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from bigdata_paas import states
from bigdata_paas.models import Instance, utcnow
from bigdata_paas.operations import lifecycle
from bigdata_paas.orquestrator.runner import reachable_workdir
from tests.conftest import Worker, base_env
from tests.faults.conftest import (
    API,
    SERVICE,
    Deployment,
    allocated_total,
    audit_allocations,
    beat,
    free_port,
    gunicorn,
    purge_queue,
    wait_until,
)

pytestmark = pytest.mark.faults

SETTINGS = {
    "PAAS_SWEEP_INTERVAL": "1",
    "PAAS_STALE_AFTER": "2",
    "PAAS_HEARTBEAT_INTERVAL": "0.5",
    "PAAS_HEARTBEAT_TIMEOUT": "3",
}
#: the status each stranded instance is left in, its messages lost
STRANDED = (states.PENDING, states.PREPARED, states.SUBMITTED, states.QUEUED, states.SCHEDULED)


class Web:
    """HTTP calls to the gunicorn process, as the admin."""

    def __init__(self, port: int, token: str) -> None:
        self.base = f"http://127.0.0.1:{port}{API}"
        self.headers = {"Authorization": f"Bearer {token}"}

    def launch(self, **options) -> requests.Response:
        name, version = SERVICE
        return requests.post(
            f"{self.base}/services/{name}/{version}", json=options, headers=self.headers, timeout=60
        )

    def launched(self, **options) -> str:
        response = self.launch(**options)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def destroy(self, instance_id: str) -> None:
        response = requests.delete(
            f"{self.base}/instances/{instance_id}", headers=self.headers, timeout=60
        )
        assert response.status_code == 202, response.text


def instance_ids(rt) -> set[str]:
    with rt.db.session() as session:
        ids = set(session.scalars(select(Instance.id)))
        session.rollback()
    return ids


def kill_web_between_commit_and_publish(deployment, web_process, web, rabbit_node) -> str:
    """Launch while RabbitMQ blocks publishers and SIGKILL gunicorn once the launch has
    committed; the launch's id (a client never got it)."""
    known = instance_ids(deployment.rt)
    answers: list[object] = []

    def launch():
        try:
            answers.append(web.launch())
        except requests.RequestException as exc:
            answers.append(exc)

    rabbit_node.block_publishers(True)
    client = threading.Thread(target=launch)
    client.start()
    (committed,) = wait_until(lambda: instance_ids(deployment.rt) - known, "the launch to commit")
    web_process.kill()
    client.join(timeout=60)
    rabbit_node.block_publishers(False)
    assert len(answers) == 1 and isinstance(answers[0], requests.ConnectionError), answers
    return committed


def strand(deployment, web) -> dict[str, str]:
    """An instance in each in-flight status, as if a worker died before its next publish."""
    stranded = {}
    for status in STRANDED:
        instance_id = web.launched()
        for step in states.LAUNCH_STEPS[: STRANDED.index(status)]:
            assert (
                lifecycle.STEP_RUNNERS[step](deployment.rt, instance_id)
                == states.STEPS[step].target
            )
        stranded[status] = instance_id
    stranded[states.DESTROYING] = web.launched()
    web.destroy(stranded[states.DESTROYING])
    return stranded


def lose_messages(env) -> None:
    """Drop whatever the queues hold, as a broker that lost its messages would."""
    for queue in ("pipeline", "orquestrator"):
        purge_queue(env, queue)


@pytest.mark.integration
@pytest.mark.services
def test_web_worker_and_broker_restarts_leave_nothing_stuck(
    rabbit_node, pg_database, data_root, tmp_path
):
    services = {"PAAS_DATABASE_URL": pg_database, "PAAS_BROKER_URL": rabbit_node.url}
    env = base_env(data_root / "var", **services, **SETTINGS)
    deployment = Deployment(env)
    port = free_port()
    web = Web(port, env["PAAS_ADMIN_TOKEN"])
    # This first web waits long enough for a confirm that the kill lands while it waits.
    slow = {**env, "PAAS_PUBLISH_TIMEOUT": "120"}
    processes = [gunicorn(slow, port, tmp_path / "web.log").start()]
    processes.append(beat(env, tmp_path / "beat.log").start())
    try:
        unpublished = kill_web_between_commit_and_publish(
            deployment, processes[0], web, rabbit_node
        )
        processes.append(gunicorn(env, port, tmp_path / "web.log").start())
        stranded = strand(deployment, web)
        hung = web.launched(hang=True)
        for step in states.LAUNCH_STEPS[:-1]:
            lifecycle.STEP_RUNNERS[step](deployment.rt, hung)
        lose_messages(env)

        first = Worker(env, tmp_path / "first-worker.log")
        processes.append(first.start())
        workdir = reachable_workdir(deployment.rt.config.work_path / hung)
        wait_until(lambda: (workdir / "first-start").exists(), "the hung start", timeout=90)
        first.stop()  # SIGKILL during the start: its message was acknowledged on receipt

        rabbit_node.stop()
        rabbit_node.start()
        second = Worker(env, tmp_path / "second-worker.log")
        processes.append(second.start())
        after_restart = web.launched()

        expected = {i: states.RUNNING for i in (unpublished, hung, after_restart)}
        expected |= {i: states.RUNNING for s, i in stranded.items() if s in STRANDED}
        expected[stranded[states.DESTROYING]] = states.DESTROYED
        wait_until(
            lambda: final_statuses(deployment.rt) == expected,
            f"every instance to reach its final status: {expected}",
            timeout=120,
            interval=0.5,
        )
        assert_swept(deployment, unpublished, hung, stranded)
        assert audit_allocations(deployment.rt) == {}
        running = sum(1 for s in expected.values() if s == states.RUNNING)
        assert allocated_total(deployment.rt) == (running, running, running)
        assert "Sending due task sweep" in processes[1].output()
    finally:
        for process in processes:
            if isinstance(process, Worker):
                process.stop()
            elif process.process is not None and not process.exited():
                process.kill()
        deployment.close()


@pytest.mark.integration
@pytest.mark.services
def test_a_launch_while_rabbitmq_blocks_publishers_is_a_503_that_leaves_nothing(
    rabbit_node, pg_database, data_root
):
    """A memory alarm: RabbitMQ accepts the connection but never confirms. The launch waits
    for the publish timeout, not forever, then answers 503 and removes its instance."""
    services = {"PAAS_DATABASE_URL": pg_database, "PAAS_BROKER_URL": rabbit_node.url}
    deployment = Deployment(base_env(data_root / "var", **services, PAAS_PUBLISH_TIMEOUT="2"))
    try:
        rabbit_node.block_publishers(True)
        try:
            response = deployment.launch()
        finally:
            rabbit_node.block_publishers(False)
        assert response.status_code == 503, response.get_json()
        assert response.get_json()["error"]["code"] == "unavailable"
        assert instance_ids(deployment.rt) == set()
        assert deployment.launch().status_code == 202  # the alarm cleared: launches go on
    finally:
        deployment.close()


def final_statuses(rt) -> dict[str, str]:
    with rt.db.session() as session:
        rows = dict(session.execute(select(Instance.id, Instance.status)).all())
        session.rollback()
    return rows


def assert_swept(deployment, unpublished, hung, stranded) -> None:
    """Every stranded instance moved on thanks to the sweep, which says so in its events (a
    queued one is placed by the queue drain that each sweep asks for)."""
    swept = [i for status, i in stranded.items() if status != states.QUEUED]
    for instance_id in (unpublished, *swept):
        events = deployment.events(instance_id)
        assert any(e["step"] == "sweep" for e in events), (instance_id, events)
    messages = [e["message"] for e in deployment.events(hung)]
    assert "orquestrator start lost (no heartbeat); starting it again" in messages, messages


def test_a_backlog_of_sweeps_republishes_a_stranded_instance_once(env):
    """Sweeps pile up in the queue while no worker runs; when one comes back, the first sweep
    republishes the stranded instance and restarts its deadline, the others publish nothing."""
    deployment = Deployment(env)
    try:
        response = deployment.launch()
        assert response.status_code == 202, response.get_json()
        instance_id = response.get_json()["id"]
        with deployment.rt.db.session() as session:
            session.execute(
                update(Instance)
                .where(Instance.id == instance_id)
                .values(updated_at=utcnow() - timedelta(hours=1))
            )
            session.commit()
        with deployment.app.app_context():
            backlog = [lifecycle.recovery.sweep(deployment.rt)["republished"] for _ in range(5)]
        assert backlog == [1, 0, 0, 0, 0]
        notes = [e for e in deployment.events(instance_id) if e["step"] == "sweep"]
        assert [e["message"] for e in notes] == ["no progress for 60 s; prepare published again"]
    finally:
        deployment.close()
