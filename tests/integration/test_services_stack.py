"""The production stack: the same pipeline on RabbitMQ (AMQP) and PostgreSQL.

Each test has its own PostgreSQL database and its own queue names (``services_env``); the
queues and exchanges it declared on the shared RabbitMQ are deleted afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kombu import Connection

from tests.conftest import (
    ADMIN_TOKEN,
    Worker,
    bearer,
    load_example_hosts,
    make_app,
    register_example,
    wait_for_status,
)
from tests.integration.support import (
    API,
    assert_nothing_allocated,
    events,
    launch,
    log_lines,
)

pytestmark = [pytest.mark.integration, pytest.mark.services]

QUEUES = ("pipeline", "orquestrator")
DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens on port 1


def close_app(app) -> None:
    app.extensions["celery"].close()
    app.extensions["paas"].db.dispose()


@pytest.fixture
def stack(services_env, tmp_path) -> Iterator:
    """The app on PostgreSQL + RabbitMQ and a real worker on both queues."""
    app = make_app(services_env)
    worker = None
    try:
        worker = Worker(services_env, tmp_path / "w.log").start()
        yield app
    finally:
        if worker is not None:
            worker.stop()
        close_app(app)


def test_launch_run_destroy_on_rabbitmq_and_postgresql(stack, admin, services_env):
    client = stack.test_client()
    assert stack.extensions["paas"].db.engine.dialect.name == "postgresql"
    health = client.get(f"{API}/health").get_json()
    assert health == {"status": "ok", "web": "ok", "database": "ok", "broker": "ok"}

    register_example(client, admin, "gluster", "3.7.11")
    load_example_hosts(client, admin)
    instance = launch(client, admin, "gluster", "3.7.11", {"size": 2, "disks": 2})

    body = wait_for_status(client, admin, instance["id"], {"running", "failed"})
    assert body["status"] == "running", body.get("error")
    assert [(e["step"], e["status"]) for e in events(client, admin, instance["id"])] == [
        ("launch", "pending"),
        ("prepare", "prepared"),
        ("submit", "submitted"),
        ("queue", "queued"),
        ("schedule", "scheduled"),
        ("run", "scheduled"),
        ("run", "running"),
    ]
    assert len(body["nodes"]) == 2
    assert all(node["host"] and len(node["disks"]) == 2 for node in body["nodes"]), body
    start = [line["line"] for line in log_lines(client, admin, instance["id"])]
    assert f"would run: gluster volume start vol{instance['id']}" in start, start

    response = client.delete(f"{API}/instances/{instance['id']}", headers=admin)
    assert response.status_code == 202, response.get_json()
    wait_for_status(client, admin, instance["id"], {"destroyed"})
    timeline = events(client, admin, instance["id"])
    assert [e["status"] for e in timeline[-3:]] == ["destroying", "destroying", "destroyed"]
    stop = [line["line"] for line in log_lines(client, admin, instance["id"])]
    assert f"gluster volume vol{instance['id']} removed" in stop, stop
    assert_nothing_allocated(client, admin)

    # Both queues were really used on RabbitMQ, and nothing is left in them.
    with Connection(services_env["PAAS_BROKER_URL"], connect_timeout=5) as conn:
        for name in QUEUES:
            declared = conn.default_channel.queue_declare(
                services_env["PAAS_QUEUE_PREFIX"] + name, passive=True
            )
            assert declared.message_count == 0, declared


def test_launch_answers_503_and_leaves_nothing_when_the_broker_is_down(services_env):
    env = {**services_env, "PAAS_BROKER_URL": DEAD_BROKER, "PAAS_PUBLISH_TIMEOUT": "1"}
    app = make_app(env)
    try:
        client = app.test_client()
        admin = bearer(ADMIN_TOKEN)
        register_example(client, admin, "gluster", "3.7.11")

        response = client.post(
            f"{API}/services/gluster/3.7.11", json={"size": 2, "disks": 2}, headers=admin
        )
        assert response.status_code == 503
        assert response.mimetype == "application/json"
        body = response.get_json()
        assert body["status"] == 503, body
        assert body["error"]["code"] == "unavailable", body
        assert "broker" in body["error"]["message"], body

        listing = client.get(f"{API}/instances", headers=admin).get_json()
        assert listing["total"] == 0, listing
        assert listing["items"] == []

        health = client.get(f"{API}/health")
        assert health.status_code == 503
        assert health.get_json()["broker"] == "unreachable"
        assert health.get_json()["database"] == "ok"
    finally:
        close_app(app)
