"""A running instance resized through the real pipeline: PostgreSQL, RabbitMQ, a worker, a
beat and one agent per host (the process driver): nodes join and leave, and every failure
leaves the instance exactly as it was.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from bigdata_paas.models import Address, Event, Host, HostDisk, Instance, Node
from tests.agents.conftest import API, Stack, cleanup_queues, node_answer
from tests.conftest import Worker, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.services]

#: checks that every node it is handed runs; a scale-out to 5 nodes fails; a scale-out to 6
#: takes long enough for its worker to be killed in the middle
ORQUESTRATOR = """# paas-actions: scale-out decommission
import json, os, sys, time
doc = json.load(open(os.environ["PAAS_INSTANCE_FILE"]))
action = sys.argv[1]
if action in ("start", "scale-out"):
    for node in doc["nodes"]:
        assert node["runtime"]["state"] == "running", node
if action in ("scale-out", "decommission"):
    changed = json.load(open(os.environ["PAAS_CHANGED_NODES_FILE"]))
    before = json.load(open(os.environ["PAAS_PREVIOUS_INSTANCE_FILE"]))
    print(action, [n["name"] for n in changed], len(before["nodes"]), "->", len(doc["nodes"]))
    if action == "scale-out" and len(doc["nodes"]) == 5:
        sys.exit("scale-out refused (injected)")
    if action == "scale-out" and len(doc["nodes"]) == 6:
        time.sleep(120)
"""


@pytest.fixture
def stack(services_env, tmp_path, admin):
    env = {
        **services_env,
        "PAAS_NODE_DRIVER": "process",
        "PAAS_AGENT_HEARTBEAT": "0.5",
        "PAAS_HOST_DOWN_AFTER": "30",
        "PAAS_SWEEP_INTERVAL": "1",
        "PAAS_NODE_START_TIMEOUT": "60",
        "PAAS_NODE_STOP_TIMEOUT": "20",
        "PAAS_HEALTH_TIMEOUT": "20",
        "PAAS_HEARTBEAT_INTERVAL": "0.5",
        "PAAS_HEARTBEAT_TIMEOUT": "3",
        "PAAS_STALE_AFTER": "2",
    }
    stack = Stack(env, tmp_path, "process")
    try:
        stack.setup(admin)
        response = stack.client.put(
            f"{API}/services/box/1/orquestrator",
            data=ORQUESTRATOR,
            content_type="application/json",
            headers=admin,
        )
        assert response.status_code == 200, response.get_json()
        yield stack
    finally:
        stack.stop()
        with contextlib.suppress(Exception):
            cleanup_queues(env, stack.hosts)


def resize(stack, admin, instance_id: str, body: dict):
    return stack.client.patch(f"{API}/instances/{instance_id}", json=body, headers=admin)


def client_stack(stack, client):
    """The stack as ``resize`` sees it, through another client (one per thread)."""
    return SimpleNamespace(client=client)


def rows(stack, instance_id: str) -> dict:
    """Every row a resize could touch: the instance, its nodes, every allocation."""
    with stack.rt.db.session() as session:
        instance = session.get(Instance, instance_id)
        return {
            "instance": (
                instance.status,
                instance.options,
                instance.merged_options,
                instance.spec,
                instance.resize,
            ),
            "nodes": sorted(
                (n.name, n.host_id, n.cpu, n.mem, n.placement)
                for n in session.scalars(select(Node).where(Node.instance_id == instance_id))
            ),
            "hosts": sorted(session.execute(select(Host.name, Host.cpu_used, Host.mem_used))),
            "disks": sorted(session.execute(select(HostDisk.id, HostDisk.node_id))),
            "addresses": sorted(session.execute(select(Address.address, Address.node_id))),
        }


def resize_events(stack, instance_id: str) -> list[str]:
    with stack.rt.db.session() as session:
        return list(
            session.scalars(
                select(Event.message)
                .where(Event.instance_id == instance_id, Event.step == "resize")
                .order_by(Event.id)
            )
        )


def answers_as(node: dict, instance_id: str) -> bool:
    answer = node_answer(node["address"], 8080)
    return answer is not None and (answer["instance"], answer["node"]) == (
        instance_id,
        node["name"],
    )


def allocated(stack, admin) -> tuple[int, int]:
    hosts = stack.host_rows(admin)
    return sum(h["allocated"]["cpu"] for h in hosts), sum(h["allocated"]["disks"] for h in hosts)


def test_resize_up_and_down_and_every_failure_leaves_it_as_it_was(stack, admin):
    instance_id = stack.launch(admin, n=2)
    body = stack.wait_status(admin, instance_id, {"running", "failed"})
    assert body["status"] == "running", body.get("error")

    # up: two nodes join, placed, started on their hosts' agents, configured by scale-out
    response = resize(stack, admin, instance_id, {"options": {"n": 4}})
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "updating"
    body = stack.wait_status(admin, instance_id, {"running"})
    nodes = {n["name"]: n for n in body["nodes"]}
    assert sorted(nodes) == ["node0", "node1", "node2", "node3"]
    assert body["options"]["n"] == 4
    for node in nodes.values():
        assert node["runtime"]["state"] == "running" and node["runtime"]["host"] == node["host"]
        assert answers_as(node, instance_id), node
    assert allocated(stack, admin) == (4, 4)
    events = resize_events(stack, instance_id)
    assert events[0] == "resize requested: add 2 node(s): node2, node3"
    for name in ("node2", "node3"):
        assert f"node {name} joins on host {nodes[name]['host']}" in events
    assert events[-1].startswith("resized: added node2, node3")
    logs = stack.client.get(f"{API}/instances/{instance_id}/logs", headers=admin).get_json()
    assert "scale-out ['node2', 'node3'] 2 -> 4" in [line["line"] for line in logs["lines"]]

    # a scale-out that fails: the joining node is stopped, released and forgotten
    before = rows(stack, instance_id)
    response = resize(stack, admin, instance_id, {"options": {"n": 5}})
    assert response.status_code == 202, response.get_json()
    joined = next(n for n in stack.instance(admin, instance_id)["nodes"] if n["name"] == "node4")
    wait_until(
        lambda: stack.instance(admin, instance_id)["status"] == "running",
        "the failed scale-out rolled back",
        timeout=90,
    )
    assert rows(stack, instance_id) == before
    assert "scale-out refused (injected)" in resize_events(stack, instance_id)[-1]
    assert resize_events(stack, instance_id)[-1].startswith("resize rolled back")
    assert node_answer(joined["address"], 8080) is None  # its agent stopped it

    # no capacity (two disks a host, six in all): a 409 at once, and nothing changes
    response = resize(stack, admin, instance_id, {"options": {"n": 7}})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "no_capacity"
    assert rows(stack, instance_id) == before

    # down, naming who leaves: node0 and node2 are decommissioned, stopped and released
    response = resize(
        stack, admin, instance_id, {"options": {"n": 2}, "remove": ["node0", "node2"]}
    )
    assert response.status_code == 202, response.get_json()
    body = stack.wait_status(admin, instance_id, {"running"})
    assert {n["name"] for n in body["nodes"]} == {"node1", "node3"}
    for name in ("node1", "node3"):
        assert {n["name"]: n for n in body["nodes"]}[name]["host"] == nodes[name]["host"]
        assert answers_as(nodes[name], instance_id)
    for name in ("node0", "node2"):
        assert node_answer(nodes[name]["address"], 8080) is None
        assert f"node {name} removed ({nodes[name]['host']})" in resize_events(stack, instance_id)
    assert allocated(stack, admin) == (2, 2)
    logs = stack.client.get(f"{API}/instances/{instance_id}/logs", headers=admin).get_json()
    assert "decommission ['node0', 'node2'] 4 -> 2" in [line["line"] for line in logs["lines"]]

    assert stack.client.delete(f"{API}/instances/{instance_id}", headers=admin).status_code == 202
    stack.wait_status(admin, instance_id, {"destroyed"})
    assert allocated(stack, admin) == (0, 0)


def test_a_worker_killed_mid_resize_is_rolled_back_by_the_sweep(stack, admin, tmp_path):
    instance_id = stack.launch(admin, n=4)
    body = stack.wait_status(admin, instance_id, {"running", "failed"})
    assert body["status"] == "running", body.get("error")
    before = rows(stack, instance_id)

    # to 6 nodes: the scale-out sleeps; its worker dies in the middle
    response = resize(stack, admin, instance_id, {"options": {"n": 6}})
    assert response.status_code == 202, response.get_json()
    wait_until(
        lambda: any(
            line["command"] == "scale-out"
            for line in stack.client.get(
                f"{API}/instances/{instance_id}/logs", headers=admin
            ).get_json()["lines"]
        ),
        "the scale-out began",
        timeout=90,
    )
    stack.worker.stop()  # SIGKILL: the worker dies in the middle of the scale-out
    time.sleep(1)
    assert stack.instance(admin, instance_id)["status"] == "updating"
    stack.worker = Worker(stack.env, tmp_path / "worker2.log").start()

    # the heartbeat stops; the sweep publishes the resize again, which rolls it back
    wait_until(
        lambda: stack.instance(admin, instance_id)["status"] == "running",
        "the sweep rolled the resize back",
        timeout=120,
    )
    assert rows(stack, instance_id) == before
    last = resize_events(stack, instance_id)[-1]
    assert last.startswith("resize rolled back"), last
    assert "stopped before it ended" in last


def test_concurrent_resizes_make_one(stack, admin):
    instance_id = stack.launch(admin, n=2)
    body = stack.wait_status(admin, instance_id, {"running", "failed"})
    assert body["status"] == "running", body.get("error")
    barrier = threading.Barrier(8)

    def one(size: int):
        client = stack.app.test_client()
        barrier.wait()
        return resize(client_stack(stack, client), admin, instance_id, {"options": {"n": size}})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, [3, 4] * 4))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] + [409] * 7, [a.get_json() for a in answers]
    won = next(a.get_json() for a in answers if a.status_code == 202)
    size = won["resize"]["options"]["n"]
    assert len(won["nodes"]) == size and won["status"] == "updating"
    body = stack.wait_status(admin, instance_id, {"running"})
    assert len(body["nodes"]) == size and body["options"]["n"] == size
    assert allocated(stack, admin)[0] == size
    requested = [m for m in resize_events(stack, instance_id) if m.startswith("resize requested")]
    assert len(requested) == 1
