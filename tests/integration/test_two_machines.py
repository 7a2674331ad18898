"""Two machines on this one (docs/deploy.md): two sets of web, pipeline worker and orquestrator
worker, each with its own data folder and Celery names (``pipeline@machine-a`` ...), against the
same RabbitMQ vhost and PostgreSQL database; machine B also runs beat. Launches go through
either web; every process of machine A is SIGKILLed while launches are in flight. Machine B
finishes every launch the platform accepted: each instance runs, each status change of its
launch is recorded once, and the inventory holds exactly what the running instances use.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bigdata_paas import states
from bigdata_paas.models import Instance
from tests.conftest import Worker
from tests.faults.conftest import (
    Deployment,
    Process,
    allocated_total,
    audit_allocations,
    beat,
    free_port,
    gunicorn,
    purge_queue,
    wait_until,
)
from tests.faults.test_restarts import Web
from tests.faults.test_worker_kill import TRANSITIONS, in_flight

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.services]

SETTINGS = {
    "PAAS_SWEEP_INTERVAL": "1",
    "PAAS_STALE_AFTER": "2",
    "PAAS_HEARTBEAT_INTERVAL": "0.5",
    "PAAS_HEARTBEAT_TIMEOUT": "3",
}
LAUNCHES_BEFORE_KILL = 16  # eight through each web
LAUNCHES_AFTER_KILL = 4  # through the web that is left


class Machine:
    """One machine's processes: web, a pipeline and an orquestrator worker (and beat)."""

    def __init__(self, name: str, env: dict[str, str], root: Path, with_beat: bool) -> None:
        self.name = name
        self.env = {**env, "PAAS_DATA_DIR": str(root / name / "var")}
        self.logs = root / name
        self.logs.mkdir(parents=True)
        self.port = free_port()
        self.web = Web(self.port, env["PAAS_ADMIN_TOKEN"])
        self.workers = [self.worker(queue) for queue in ("pipeline", "orquestrator")]
        self.processes: list[Process] = [gunicorn(self.env, self.port, self.logs / "web.log")]
        if with_beat:
            self.processes.append(beat(self.env, self.logs / "beat.log"))

    def worker(self, queue: str) -> Worker:
        worker = Worker(self.env, self.logs / f"{queue}.log", queues=(queue,))
        worker.args[worker.args.index("-n") + 1] = f"{queue}@{self.name}"
        return worker

    def start(self) -> Machine:
        for worker in self.workers:
            worker.start()
        for process in self.processes:
            process.start()
        return self

    def in_flight(self) -> list[str]:
        return [task for worker in self.workers for task in in_flight(worker.output())]

    def kill(self) -> None:
        """SIGKILL every process of the machine (each in its own process group)."""
        for process in self.processes:
            if process.process is not None and not process.exited():
                process.kill()
        for worker in self.workers:
            if worker.process is not None:
                worker.stop()


def statuses(rt) -> dict[str, str]:
    with rt.db.session() as session:
        found = {i: s for i, s in session.execute(select(Instance.id, Instance.status))}
        session.rollback()
    return found


def test_a_machine_killed_mid_launches_leaves_its_work_to_the_other(services_env, tmp_path):
    env = {**services_env, **SETTINGS}
    deployment = Deployment(env, hosts=2)  # `paas setup` and the inventory, once for both
    purge_queue(env, "pipeline")
    a = Machine("machine-a", env, tmp_path, with_beat=False)
    b = Machine("machine-b", env, tmp_path, with_beat=True)
    accepted: list[str] = []
    refused: list[object] = []  # launches whose answer never came (their web was killed)
    lock = threading.Lock()

    def launch(web: Web) -> None:
        try:
            response = web.launch()
        except requests.RequestException as exc:
            with lock:
                refused.append(exc)
            return
        assert response.status_code == 202, response.text
        with lock:
            accepted.append(response.json()["id"])

    try:
        a.start()
        b.start()
        clients = [
            threading.Thread(target=launch, args=(web,))
            for web in itertools.islice(itertools.cycle((a.web, b.web)), LAUNCHES_BEFORE_KILL)
        ]
        for client in clients:
            client.start()
        # kill while machine A's workers hold launches' steps, and launches still arrive
        wait_until(
            lambda: a.in_flight() and len(accepted) >= 4,
            lambda: f"machine A to work on launches ({len(accepted)} accepted)",
            timeout=120,
            interval=0.05,
        )
        held = a.in_flight()
        at_kill = statuses(deployment.rt)
        a.kill()
        assert held, "machine A held no step when it was killed"
        assert [s for s in at_kill.values() if s != states.RUNNING], at_kill
        for client in clients:
            client.join(timeout=120)
        for _ in range(LAUNCHES_AFTER_KILL):
            launch(b.web)
        assert len(accepted) + len(refused) == LAUNCHES_BEFORE_KILL + LAUNCHES_AFTER_KILL

        def all_running():
            found = statuses(deployment.rt)
            return found if all(s == states.RUNNING for s in found.values()) else None

        final = wait_until(
            all_running,
            lambda: f"every instance to run: {sorted(statuses(deployment.rt).values())}",
            timeout=240,
            interval=0.5,
        )
        # every accepted launch, and those whose answer was lost with machine A's web
        assert set(accepted) <= set(final)
        assert len(final) - len(accepted) <= len(refused)
        assert len(set(accepted)) == len(accepted)
        for instance_id in final:
            changes = [(e["step"], e["status"]) for e in deployment.events(instance_id)]
            assert all(changes.count(t) == 1 for t in TRANSITIONS), (instance_id, changes)
        assert audit_allocations(deployment.rt) == {}
        assert allocated_total(deployment.rt) == (len(final),) * 3
        # machine B's own workers did the rest, under their own names
        assert "pipeline@machine-b ready." in b.workers[0].output()
        assert "orquestrator@machine-b ready." in b.workers[1].output()
    finally:
        a.kill()
        b.kill()
        deployment.close()
