"""bigdata_paas.client against the real app, in process (httpx's WSGI transport): every
endpoint, the error envelope as ApiError, follow and wait. The paas command and a dropped
connection through gunicorn are in tests/integration/test_paas_command.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import update

from bigdata_paas.client import (
    ApiError,
    Client,
    ConnectionFailed,
    InstanceFailed,
    WaitTimeout,
)
from bigdata_paas.models import Instance
from tests.api.streaming import log_line, record
from tests.conftest import ADMIN_TOKEN, EXAMPLES, base_env, free_port, wait_until

URL = "http://paas.test"  # the WSGI transport answers every host


@pytest.fixture
def env(data_root):
    return base_env(
        data_root / "var", PAAS_STREAM_KEEPALIVE="0.2", PAAS_STREAM_POLL_INTERVAL="0.05"
    )


@pytest.fixture
def connect(app) -> Iterator:
    """Make a Client of the app for a token; the streams end with the test."""
    clients: list[Client] = []

    def make(token: str | None = ADMIN_TOKEN) -> Client:
        clients.append(Client(URL, token, transport=httpx.WSGITransport(app=app)))
        return clients[-1]

    yield make
    app.extensions["feeds"].close(wait=30)
    for client in clients:
        client.close()


@pytest.fixture
def paas(connect) -> Client:
    """The admin's client, with gluster 3.7.11 registered and the demo inventory loaded."""
    client = connect()
    folder = EXAMPLES / "gluster" / "3.7.11"
    meta = json.loads((folder / "service.json").read_text())
    client.register_service(meta["name"], meta["version"], meta["description"])
    client.put_template("gluster", "3.7.11", (folder / "service-template.json").read_text())
    client.put_options("gluster", "3.7.11", json.loads((folder / "options.json").read_text()))
    client.put_orquestrator("gluster", "3.7.11", (folder / "orquestrator.py").read_text())
    inventory = json.loads((EXAMPLES / "inventory.json").read_text())
    for network in inventory["networks"]:
        client.add_network({**network, "cidr": "127.251.0.0/24", "gateway": "127.251.0.1"})
    for host in inventory["hosts"]:
        client.add_host(host)
    return client


def test_every_endpoint(app, paas, connect):
    # the catalog
    assert paas.services() == [
        {
            "name": "gluster",
            "description": "GlusterFS parallel filesystem cluster",
            "versions": ["3.7.11"],
        }
    ]
    assert [v["version"] for v in paas.versions("gluster")] == ["3.7.11"]
    assert paas.service("gluster", "3.7.11")["ready"] is True
    assert paas.template("gluster", "3.7.11").startswith("{")
    assert paas.options("gluster", "3.7.11")["required"] == {"size": 2, "disks": 2}
    schema = paas.options_schema("gluster", "3.7.11")
    assert schema["properties"]["size"]["type"] == "integer"
    # the inventory and users
    assert [h["name"] for h in paas.hosts()] == ["node01", "node02", "node03", "node04"]
    assert paas.update_host("node04", {"state": "drain"})["state"] == "drain"
    assert paas.host("node04")["state"] == "drain"
    assert paas.update_host("node04", {"state": "up"})["state"] == "up"
    assert paas.network("demo")["cidr"] == "127.251.0.0/24"
    assert [n["name"] for n in paas.networks()] == ["demo"]
    created = paas.create_user("carol")
    assert created["role"] == "user" and created["token"]
    assert {u["name"] for u in paas.users()} == {"admin", "carol"}
    assert paas.health()["database"] == "ok"
    # instances
    plan = paas.plan("gluster", "3.7.11", {"size": 3})
    assert plan["fits"] is True and plan["nodes"] == 3
    first = paas.launch("gluster", "3.7.11", {"size": 2}, idempotency_key="k-1")
    again = paas.launch("gluster", "3.7.11", {"size": 2}, idempotency_key="k-1")
    assert again["id"] == first["id"]
    second = paas.launch("gluster", "3.7.11")
    carol = connect(created["token"])
    theirs = carol.launch("gluster", "3.7.11", {"size": 1})
    listed = list(paas.instances(per_page=1))  # three pages
    assert [i["id"] for i in listed] == [theirs["id"], second["id"], first["id"]]
    assert [i["id"] for i in carol.instances()] == [theirs["id"]]
    assert [i["id"] for i in paas.instances(user="carol")] == [theirs["id"]]
    assert paas.instance(first["id"])["options"] == {"size": 2}
    events = paas.events(first["id"])
    assert [e["status"] for e in events] == ["pending"] and events[0]["id"] > 0
    assert paas.events(first["id"], after=events[-1]["id"], wait=0.1) == []
    log_line(app, first["id"], "hello")
    assert [line["line"] for line in paas.logs(first["id"])] == ["hello"]
    assert paas.destroy(first["id"])["status"] == "destroying"
    with pytest.raises(ApiError) as refused:
        paas.retry(second["id"])
    assert (refused.value.status, refused.value.code) == (409, "conflict")
    with pytest.raises(ApiError) as in_use:
        paas.delete_service("gluster", "3.7.11")
    assert in_use.value.status == 409


def test_errors_are_api_errors_with_the_envelope(app, paas, connect):
    with pytest.raises(ApiError) as bad:
        paas.launch("gluster", "3.7.11", {"size": "2", "nope": 1})
    assert (bad.value.status, bad.value.code) == (400, "invalid_input")
    assert {p["field"] for p in bad.value.problems} == {"size", "nope"}
    assert "size" in bad.value.message
    with pytest.raises(ApiError) as missing:
        paas.instance("0" * 32)
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert missing.value.message == f"instance {'0' * 32} not found"
    with pytest.raises(ApiError) as anonymous:
        connect("wrong-token").services()
    assert (anonymous.value.status, anonymous.value.code) == (401, "unauthorized")
    user = connect(paas.create_user("dave")["token"])
    with pytest.raises(ApiError) as forbidden:
        user.hosts()
    assert (forbidden.value.status, forbidden.value.code) == (403, "forbidden")
    with pytest.raises(ConnectionFailed, match="cannot reach"):
        Client(f"http://127.0.0.1:{free_port()}", "t").services()  # nothing listens there


def test_follow_from_the_start_or_after_an_id_each_event_once(app, paas):
    instance = paas.launch("gluster", "3.7.11")
    for step, status in (("prepare", "prepared"), ("submit", "submitted"), ("run", "running")):
        record(app, instance["id"], step, status)
    everything = list(paas.follow(instance["id"]))  # ends at running (then a 204)
    assert [e["status"] for e in everything] == [
        "pending",
        "prepared",
        "submitted",
        "running",
    ]
    assert everything == paas.events(instance["id"])
    rest = list(paas.follow(instance["id"], after=everything[1]["id"]))
    assert rest == everything[2:]
    assert list(paas.follow(instance["id"], after=everything[-1]["id"])) == []


def play(app, instance_id: str, steps: list[tuple[str, str, str]]) -> threading.Thread:
    """Record the steps on a thread, once a stream waits."""

    def run() -> None:
        wait_until(lambda: app.extensions["feeds"].open_streams, "a stream to wait")
        for step, status, message in steps:
            record(app, instance_id, step, status, message)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_wait_returns_the_instance_that_reached_the_status(app, paas):
    instance = paas.launch("gluster", "3.7.11")
    seen: list[str] = []
    steps = [("prepare", "prepared", ""), ("queue", "queued", ""), ("run", "running", "up")]
    thread = play(app, instance["id"], steps)
    final = paas.wait(
        instance["id"], until={"running"}, on_event=lambda e: seen.append(e["status"])
    )
    thread.join()
    assert final["status"] == "running" and final["id"] == instance["id"]
    assert seen == ["pending", "prepared", "queued", "running"]
    # already there: at once, without a stream
    assert paas.wait(instance["id"], until={"running"})["status"] == "running"


def test_wait_raises_when_the_instance_fails(app, paas):
    instance = paas.launch("gluster", "3.7.11")
    with app.extensions["paas"].db.session() as session:
        session.execute(
            update(Instance)
            .where(Instance.id == instance["id"])
            .values(failed_step="run", error="orquestrator start exited with 3")
        )
        session.commit()
    thread = play(app, instance["id"], [("run", "failed", "orquestrator start exited with 3")])
    with pytest.raises(InstanceFailed) as failed:
        paas.wait(instance["id"], until={"running"})
    thread.join()
    assert (failed.value.step, failed.value.reason) == ("run", "orquestrator start exited with 3")
    assert str(failed.value) == (
        f"instance {instance['id']} failed at run: orquestrator start exited with 3"
    )


def test_wait_times_out_with_the_reason_it_waits(app, paas):
    instance = paas.launch("gluster", "3.7.11")
    with app.extensions["paas"].db.session() as session:
        session.execute(
            update(Instance)
            .where(Instance.id == instance["id"])
            .values(status="queued", wait_reason="no fit: cpu")
        )
        session.commit()
    with pytest.raises(WaitTimeout) as late:
        paas.wait(instance["id"], until={"running"}, timeout=0.5)
    assert late.value.instance["status"] == "queued"
    assert late.value.instance["waiting_for"] == "no fit: cpu"
    assert "waiting for: no fit: cpu" in str(late.value)
