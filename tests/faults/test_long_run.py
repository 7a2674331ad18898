"""An orquestrator start that outlives RabbitMQ's consumer ack timeout runs once, not in a loop.

RabbitMQ closes the channel of a consumer that holds a message unacknowledged longer than
``consumer_timeout`` (30 minutes by default) and redelivers it. The run step acknowledges on
receipt and keeps a heartbeat in the database instead. On a private RabbitMQ node the timeout
is 2 s and the channels check it every second, against a 12 s start.
"""

from __future__ import annotations

import pytest

from tests.conftest import Worker, base_env, make_app, wait_for_status

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.services]

API = "/bigdata/api/v1"
SLOW_START = """import sys, time
if sys.argv[1] == "start":
    print("start begins", flush=True)
    time.sleep(12)
    print("start ends", flush=True)
"""


@pytest.fixture
def short_consumer_timeout(rabbit_node):
    """The private node, its consumer timeout and channel tick shortened (new channels)."""
    for setting, value in (("consumer_timeout", 2000), ("channel_tick_interval", 1000)):
        result = rabbit_node.ctl("eval", f"application:set_env(rabbit, {setting}, {value}).")
        assert result.returncode == 0, result.stdout + result.stderr
    return rabbit_node


def test_a_start_longer_than_the_ack_timeout_runs_once(
    short_consumer_timeout, pg_database, data_root, tmp_path
):
    services_env = base_env(
        data_root / "var",
        PAAS_DATABASE_URL=pg_database,
        PAAS_BROKER_URL=short_consumer_timeout.url,
        PAAS_ORQUESTRATOR_TIMEOUT="300",
    )
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
        body = wait_for_status(client, admin, instance_id, {"running", "failed"}, timeout=120)
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
