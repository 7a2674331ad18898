"""The launch pipeline end to end on the embedded defaults: SQLite and the filesystem broker.

A real ``celery worker`` process consumes both queues; the tests drive it through the API.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import Worker, load_example_hosts, register_example, wait_for_status, wait_until
from tests.integration.support import (
    API,
    assert_nothing_allocated,
    events,
    hosts,
    launch,
    log_lines,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def catalog(client, admin, worker):
    """gluster 3.7.11 and cdh 5.7.2 registered, the example hosts loaded, a worker running."""
    register_example(client, admin, "gluster", "3.7.11")
    register_example(client, admin, "cdh", "5.7.2")
    load_example_hosts(client, admin)
    return worker


def test_launch_runs_then_destroy_releases_everything(client, admin, catalog):
    instance = launch(client, admin, "gluster", "3.7.11", {"size": 2, "disks": 2})
    assert instance["status"] == "pending"

    body = wait_for_status(client, admin, instance["id"], {"running", "failed"})
    assert body["status"] == "running", body.get("error")

    timeline = events(client, admin, instance["id"])
    assert [(e["step"], e["status"]) for e in timeline] == [
        ("launch", "pending"),
        ("prepare", "prepared"),
        ("submit", "submitted"),
        ("queue", "queued"),
        ("schedule", "scheduled"),
        ("run", "scheduled"),  # "orquestrator start began": a note, not a transition
        ("run", "running"),
    ], timeline
    assert timeline[5]["message"] == "orquestrator start began"
    assert timeline[6]["message"].startswith("orquestrator start exited with 0")

    nodes = {node["name"]: node for node in body["nodes"]}
    assert sorted(nodes) == ["gluster0", "gluster1"]
    for node in nodes.values():
        assert node["host"] in {"node01", "node02", "node03", "node04"}, node
        assert len(node["disks"]) == 2, node
        assert {d["destination"] for d in node["disks"]} == {"/data/0", "/data/1"}
        assert all(d["type"] == "hdd" and d["origin"].startswith("/data/sd") for d in node["disks"])

    held = {h["name"]: h["allocated"] for h in hosts(client, admin)}
    assert sum(a["cpu"] for a in held.values()) == 2
    assert sum(a["mem"] for a in held.values()) == 2048
    assert sum(a["disks"] for a in held.values()) == 4

    lines = log_lines(client, admin, instance["id"])
    assert {line["command"] for line in lines} == {"start"}, lines
    start = [line["line"] for line in lines]
    assert any(line.startswith("gluster0 on node0") for line in start), start
    assert any(line.startswith("would run: gluster volume create") for line in start), start
    assert any(line.startswith(f"gluster volume vol{instance['id']} started") for line in start)

    response = client.delete(f"{API}/instances/{instance['id']}", headers=admin)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "destroying"
    body = wait_for_status(client, admin, instance["id"], {"destroyed"})

    timeline = events(client, admin, instance["id"])
    assert [(e["step"], e["status"]) for e in timeline[7:]] == [
        ("destroy", "destroying"),
        ("destroy", "destroying"),
        ("destroy", "destroyed"),
    ], timeline
    assert timeline[7]["message"] == "destroy requested (was running)"
    assert timeline[8]["message"].startswith("orquestrator stop exited with 0")

    stop = [
        line["line"]
        for line in log_lines(client, admin, instance["id"])
        if line["command"] == "stop"
    ]
    assert f"gluster volume vol{instance['id']} removed" in stop, stop
    assert "stopping glusterd on gluster0" in stop, stop
    assert_nothing_allocated(client, admin)


def test_queued_for_capacity_until_the_blocker_is_destroyed(client, admin, catalog):
    blocker = launch(client, admin, "gluster", "3.7.11", {"size": 4, "cpu": 16, "disks": 1})
    body = wait_for_status(client, admin, blocker["id"], {"running", "failed"})
    assert body["status"] == "running", body.get("error")
    assert all(h["free"]["cpu"] == 0 for h in hosts(client, admin))

    waiting = launch(client, admin, "cdh", "5.7.2", {"slaves.number": 3})
    body = wait_until(
        lambda: _with_reason(client, admin, waiting["id"]), "a queued instance with a reason"
    )
    assert body["status"] == "queued"
    assert "cpu" in body["waiting_for"], body["waiting_for"]
    assert all(node["host"] is None for node in body["nodes"]), body["nodes"]

    response = client.delete(f"{API}/instances/{blocker['id']}", headers=admin)
    assert response.status_code == 202, response.get_json()
    body = wait_for_status(client, admin, waiting["id"], {"running", "failed"})
    assert body["status"] == "running", body.get("error")
    assert "waiting_for" not in body
    assert all(node["host"] for node in body["nodes"]), body["nodes"]
    assert wait_for_status(client, admin, blocker["id"], {"destroyed"})

    timeline = [(e["step"], e["status"]) for e in events(client, admin, waiting["id"])]
    assert timeline == [
        ("launch", "pending"),
        ("prepare", "prepared"),
        ("submit", "submitted"),
        ("queue", "queued"),
        ("schedule", "queued"),  # "waiting: ..." with the reason
        ("schedule", "scheduled"),
        ("run", "scheduled"),
        ("run", "running"),
    ], timeline


def test_queued_while_every_host_drains_then_placed_when_one_is_up(client, admin, catalog):
    for name in ("node01", "node02", "node03", "node04"):
        response = client.patch(f"{API}/hosts/{name}", json={"state": "drain"}, headers=admin)
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["state"] == "drain"

    instance = launch(client, admin, "gluster", "3.7.11", {"size": 2, "disks": 2})
    body = wait_until(
        lambda: _with_reason(client, admin, instance["id"]), "a queued instance with a reason"
    )
    assert body["status"] == "queued", body.get("error")
    assert "drain" in body["waiting_for"], body["waiting_for"]

    response = client.patch(f"{API}/hosts/node03", json={"state": "up"}, headers=admin)
    assert response.status_code == 200, response.get_json()
    body = wait_for_status(client, admin, instance["id"], {"running", "failed"})
    assert body["status"] == "running", body.get("error")
    assert {node["host"] for node in body["nodes"]} == {"node03"}


def _with_reason(client, headers, instance_id: str) -> dict | None:
    """The instance once it is queued with a waiting reason, or failed; else None."""
    body = client.get(f"{API}/instances/{instance_id}", headers=headers).get_json()
    if body["status"] == "failed" or (body["status"] == "queued" and body.get("waiting_for")):
        return body
    return None


TINY_OPTIONS = {
    "required": {"n": 1},
    "optional": {},
    "advanced": {},
    "descriptions": {"n": "number of nodes"},
    "limits": {"n": {"min": 1, "max": 4}},
}
TINY_TEMPLATE = """{
  "nodes": {
  {% for i in range(opts['n']) %}
    "n{{ i }}": {"cpu": 1, "mem": 512, "disks": {"d0": {"destination": "/data/0"}}}
    {%- if not loop.last %},{% endif %}
  {% endfor %}
  },
  "services": {}
}
"""
#: renders with the default n=1, fails from n=3 on: StrictUndefined refuses the unknown name
BRITTLE_TEMPLATE = TINY_TEMPLATE.replace(
    '"services": {}', '"services": {}{% if opts["n"] > 2 %}{{ no_such_variable }}{% endif %}'
)
FAILING_ORQUESTRATOR = """#!/usr/bin/env python3
import os
import sys

print("flaky: " + sys.argv[1] + " " + os.path.basename(os.environ["PAAS_INSTANCE_FILE"]))
print("flaky: no quorum, giving up", file=sys.stderr)
sys.exit(3)
"""


def register_tiny(client, headers, name: str, template: str, orquestrator: str) -> None:
    """Register ``name``/1.0 with the tiny options document and the given parts."""
    response = client.post(
        f"{API}/services", json={"name": name, "version": "1.0"}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    for part, data in (
        ("options", json.dumps(TINY_OPTIONS)),
        ("template", template),
        ("orquestrator", orquestrator),
    ):
        response = client.put(
            f"{API}/services/{name}/1.0/{part}",
            data=data,
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 200, response.get_json()


def test_orquestrator_exit_code_fails_the_instance_and_releases(client, admin, catalog):
    register_tiny(client, admin, "flaky", TINY_TEMPLATE, FAILING_ORQUESTRATOR)
    instance = launch(client, admin, "flaky", "1.0", {"n": 2})

    body = wait_for_status(client, admin, instance["id"], {"running", "failed"})
    assert body["status"] == "failed"
    assert body["error"]["step"] == "run", body["error"]
    assert "orquestrator start exited with 3" in body["error"]["reason"], body["error"]
    assert "no quorum" in body["error"]["reason"], body["error"]

    timeline = [(e["step"], e["status"]) for e in events(client, admin, instance["id"])]
    # start began, start failed so stop ran (its outcome noted), then the failure
    assert timeline[-4:] == [
        ("schedule", "scheduled"),
        ("run", "scheduled"),
        ("run", "scheduled"),
        ("run", "failed"),
    ], timeline
    lines = [
        (line["command"], line["stream"], line["line"])
        for line in log_lines(client, admin, instance["id"])
    ]
    assert sorted(lines) == [
        ("start", "stderr", "flaky: no quorum, giving up"),
        ("start", "stdout", "flaky: start instance.json"),
        ("stop", "stderr", "flaky: no quorum, giving up"),
        ("stop", "stdout", "flaky: stop instance.json"),
    ], lines
    assert_nothing_allocated(client, admin)


def test_template_failing_for_the_options_is_refused_at_launch(client, admin, catalog):
    register_tiny(client, admin, "brittle", BRITTLE_TEMPLATE, FAILING_ORQUESTRATOR)

    response = client.post(f"{API}/services/brittle/1.0", json={"n": 3}, headers=admin)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["status"] == 422
    error = response.get_json()["error"]
    assert error["code"] == "template_error", error
    assert "no_such_variable" in error["message"], error

    listing = client.get(f"{API}/instances", headers=admin).get_json()
    assert listing["total"] == 0, listing
    assert_nothing_allocated(client, admin)


def test_template_changed_before_prepare_fails_at_prepare(client, admin, env, tmp_path):
    """The launch's dry render passed; the template changed before the worker prepared it."""
    register_tiny(client, admin, "brittle", TINY_TEMPLATE, FAILING_ORQUESTRATOR)
    load_example_hosts(client, admin)
    instance = launch(client, admin, "brittle", "1.0", {"n": 3})  # no worker yet: it waits
    response = client.put(
        f"{API}/services/brittle/1.0/template",
        data=BRITTLE_TEMPLATE,
        content_type="application/json",
        headers=admin,
    )
    assert response.status_code == 200, response.get_json()
    assert events(client, admin, instance["id"])[-1]["status"] == "pending"

    worker = Worker(env, tmp_path / "worker.log")
    try:
        worker.start()
        body = wait_for_status(client, admin, instance["id"], {"running", "failed"})
    finally:
        worker.stop()
    assert body["status"] == "failed"
    assert body["error"]["step"] == "prepare", body["error"]
    assert "no_such_variable" in body["error"]["reason"], body["error"]
    assert body["nodes"] == []
    timeline = [(e["step"], e["status"]) for e in events(client, admin, instance["id"])]
    assert timeline == [("launch", "pending"), ("prepare", "failed")], timeline
    assert_nothing_allocated(client, admin)
