"""An orquestrator start that outlives RabbitMQ's consumer ack timeout runs once, not in a loop.

RabbitMQ closes the channel of a consumer that holds a message unacknowledged
longer than ``consumer_timeout`` (30 minutes by default) and redelivers it. The
run step acknowledges on receipt and keeps a heartbeat in the database instead;
here the broker's timeout is shortened to 5 s against a 75 s start (RabbitMQ
checks the timeout about once a minute).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import Worker, make_app, wait_for_status

pytestmark = [pytest.mark.integration, pytest.mark.services]

API = "/bigdata/api/v1"
SLOW_START = """import sys, time
if sys.argv[1] == "start":
    print("start begins", flush=True)
    time.sleep(75)
    print("start ends", flush=True)
"""


def rabbitmq_eval(expression: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "eval", expression], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.strip()


@pytest.fixture
def short_consumer_timeout():
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("needs rabbitmqctl on this machine to shorten RabbitMQ's consumer_timeout")
    before = rabbitmq_eval("application:get_env(rabbit, consumer_timeout).")
    rabbitmq_eval("application:set_env(rabbit, consumer_timeout, 5000).")
    yield
    value = before.removeprefix("{ok,").removesuffix("}") if before.startswith("{ok,") else ""
    if value.isdigit():
        rabbitmq_eval(f"application:set_env(rabbit, consumer_timeout, {value}).")
    else:
        rabbitmq_eval("application:unset_env(rabbit, consumer_timeout).")


def test_a_start_longer_than_the_ack_timeout_runs_once(
    services_env, tmp_path, short_consumer_timeout
):
    services_env = {**services_env, "PAAS_ORQUESTRATOR_TIMEOUT": "300"}
    app = make_app(services_env)
    client = app.test_client()
    admin = {"Authorization": f"Bearer {services_env['PAAS_ADMIN_TOKEN']}"}
    client.post(f"{API}/services", json={"name": "slow", "version": "1"}, headers=admin)
    client.put(
        f"{API}/services/slow/1/template",
        headers=admin,
        data='{"nodes": {"n0": {"cpu": 1, "mem": 64}}}',
    )
    client.put(f"{API}/services/slow/1/options", json={}, headers=admin)
    client.put(f"{API}/services/slow/1/orquestrator", data=SLOW_START, headers=admin)
    client.post(
        f"{API}/hosts",
        headers=admin,
        json={"name": "h1", "address": "127.0.0.1", "cpu": 2, "mem": 1024},
    )
    worker = Worker(services_env, tmp_path / "worker.log").start()
    try:
        response = client.post(f"{API}/services/slow/1", json={}, headers=admin)
        assert response.status_code == 202
        instance_id = response.get_json()["id"]
        body = wait_for_status(client, admin, instance_id, {"running", "failed"}, timeout=240)
        assert body["status"] == "running", body.get("error")
        events = client.get(f"{API}/instances/{instance_id}/events", headers=admin).get_json()
        began = [e for e in events["events"] if e["message"] == "orquestrator start began"]
        assert len(began) == 1, events
        lines = [
            x["line"]
            for x in client.get(f"{API}/instances/{instance_id}/logs", headers=admin).get_json()[
                "lines"
            ]
        ]
        assert lines == ["start begins", "start ends"]
        assert "PRECONDITION_FAILED" not in worker.output()
    finally:
        worker.stop()
        app.extensions["paas"].db.dispose()
