"""Issue 5, faults 2: RabbitMQ stopped and started again during 200 launches.

The broker is a private node of the test's own (never the shared one). Launches go on while
it is down: each either gets 202 and later runs, or a clear 503 that leaves nothing behind.
Messages in RabbitMQ when it stops are durable and survive its restart; workers reconnect.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from bigdata_paas import states
from bigdata_paas.models import Event, Instance
from tests.conftest import Worker, base_env
from tests.faults.conftest import (
    Deployment,
    allocated_total,
    audit_allocations,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.services]

LAUNCHES = 200
STOP_AFTER = 70  # accepted launches before the broker stops
REFUSED_WHILE_DOWN = 5  # refused launches before it starts again
HELD_BACK = 50  # the last launches wait until the broker is down, so some surely meet it


class Launcher(threading.Thread):
    """Launch ``total`` instances one after the other; count the answers by status code.

    Launches go on while the broker stops, but the last ``HELD_BACK`` wait for
    ``broker_down``: a launch is quicker than ``rabbitmqctl stop``, so without it every
    launch could be over before the broker is.
    """

    def __init__(self, deployment: Deployment, total: int) -> None:
        super().__init__(name="launcher", daemon=True)
        self.deployment, self.total = deployment, total
        self.broker_down = threading.Event()
        self.accepted: list[str] = []
        self.codes: Counter = Counter()
        self.refusals: list[dict] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for sent in range(self.total):
                if sent == self.total - HELD_BACK:
                    self.broker_down.wait(timeout=120)
                response = self.deployment.launch()
                self.codes[response.status_code] += 1
                if response.status_code == 202:
                    self.accepted.append(response.get_json()["id"])
                else:
                    self.refusals.append(response.get_json())
                    time.sleep(0.1)  # a client backs off when told to try again
        except BaseException as exc:  # reported by the test's thread
            self.error = exc


def transitions_per_instance(rt) -> Counter:
    """How many times each (step, status) was recorded, summed over every instance."""
    with rt.db.session() as session:
        rows = session.execute(
            select(Event.step, Event.status, func.count(Event.id)).group_by(
                Event.step, Event.status
            )
        ).all()
        session.rollback()
    return Counter({(step, status): count for step, status, count in rows})


def test_rabbitmq_restart_during_200_launches_loses_and_strands_nothing(
    rabbit_node, pg_database, data_root, tmp_path
):
    env = base_env(
        data_root / "var", PAAS_DATABASE_URL=pg_database, PAAS_BROKER_URL=rabbit_node.url
    )
    deployment = Deployment(env, hosts=4)
    worker = Worker(env, tmp_path / "worker.log", concurrency=3).start()
    launcher = Launcher(deployment, LAUNCHES)
    try:
        launcher.start()
        wait_until(lambda: len(launcher.accepted) >= STOP_AFTER, "launches before the stop")
        rabbit_node.stop()
        launcher.broker_down.set()
        in_flight_at_stop = sum(
            n for s, n in deployment.statuses().items() if s not in ("running", "failed")
        )
        wait_until(
            lambda: launcher.codes[503] >= REFUSED_WHILE_DOWN or not launcher.is_alive(),
            "launches refused while RabbitMQ is down",
        )
        rabbit_node.start()
        launcher.join(timeout=300)
        assert not launcher.is_alive() and launcher.error is None, launcher.error
        accepted = len(launcher.accepted)

        assert set(launcher.codes) == {202, 503}, launcher.codes
        assert accepted + launcher.codes[503] == LAUNCHES
        assert {r["error"]["code"] for r in launcher.refusals} == {"unavailable"}
        assert "broker" in launcher.refusals[0]["error"]["message"]
        assert deployment.statuses().total() == accepted  # a refused launch left nothing

        wait_until(
            lambda: deployment.statuses()["running"] == accepted,
            "every accepted launch to run",
            timeout=240,
            interval=0.5,
        )
        assert deployment.statuses() == Counter({"running": accepted})
        assert set(launcher.accepted) == running_ids(deployment.rt)
        done = transitions_per_instance(deployment.rt)
        for step in states.LAUNCH_STEPS:  # every status change once per instance: no step ran twice
            assert done[(step, states.STEPS[step].target)] == accepted, done
        assert audit_allocations(deployment.rt) == {}
        assert allocated_total(deployment.rt) == (accepted, accepted, accepted)
        assert "Connection to broker lost" in worker.output()
        print(
            f"\n{accepted} accepted, {launcher.codes[503]} refused (503), "
            f"{in_flight_at_stop} in flight when RabbitMQ stopped"
        )
    finally:
        launcher.join(timeout=60)
        worker.stop()
        deployment.close()


def running_ids(rt) -> set[str]:
    with rt.db.session() as session:
        ids = set(session.scalars(select(Instance.id).where(Instance.status == "running")))
        session.rollback()
    return ids
