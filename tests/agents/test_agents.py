"""Nodes run where they are placed: real agents start them (podman containers or processes),
report them, stop them, and reconcile what their host runs with what the platform says."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from bigdata_paas.messaging.publish import publish_to_agent
from tests.agents.conftest import API, cleanup_queues, node_answer, podman
from tests.conftest import local_link, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.services]


def running_nodes(stack, instance_id: str) -> list[dict]:
    body = stack.instance(stack_admin(stack), instance_id)
    return body["nodes"]


def stack_admin(stack) -> dict[str, str]:
    from tests.conftest import ADMIN_TOKEN, bearer

    return bearer(ADMIN_TOKEN)


def disk_dirs(stack, instance_id: str) -> list[Path]:
    root = Path(stack.env["PAAS_DATA_DIR"]) / "agents"
    return [p for p in root.glob(f"*/disks/data/*/{instance_id}") if p.exists()]


def test_each_node_runs_on_the_agent_of_its_host_with_its_placement(stack, admin):
    instance_id = stack.launch(admin)
    body = stack.wait_status(admin, instance_id, {"running", "failed"})
    assert body["status"] == "running", body.get("error")
    nodes = body["nodes"]
    assert sorted(n["host"] for n in nodes) == sorted(stack.hosts)  # anti-affinity: spread
    for node in nodes:
        runtime = node["runtime"]
        assert runtime["state"] == "running" and runtime["host"] == node["host"], node
        assert runtime["driver"] == stack.driver
        # the node answers on its own address, as itself
        answer = node_answer(node["address"], 8080)
        assert answer is not None, node
        assert (answer["instance"], answer["node"], answer["host"]) == (
            instance_id,
            node["name"],
            node["host"],
        )
        if stack.driver == "podman":
            (inspected,) = __import__("json").loads(podman("inspect", runtime["name"]))
            host_config = inspected["HostConfig"]
            assert host_config["NanoCpus"] == node["cpu"] * 10**9
            assert host_config["Memory"] == node["mem"] * 1024 * 1024
            # started by the agent of the host it was placed on
            assert inspected["Config"]["Labels"]["paas.host"] == node["host"]
            mounts = {m["Destination"]: m for m in inspected["Mounts"]}
            assert "/data/0" in mounts and mounts["/data/0"]["RW"] is True
            source = Path(mounts["/data/0"]["Source"])
            assert re.search(
                f"/agents/{node['host']}/disks/data/sd[bc]/{instance_id}/", str(source)
            )
            podman("exec", runtime["name"], "sh", "-c", "echo written > /data/0/probe")
            assert (source / "probe").read_text() == "written\n"
    # the orquestrator got the nodes with their runtime
    logs = stack.client.get(f"{API}/instances/{instance_id}/logs", headers=admin).get_json()
    assert sum(" runs as paas-" in line["line"] for line in logs["lines"]) == 3
    assert disk_dirs(stack, instance_id)

    assert stack.client.delete(f"{API}/instances/{instance_id}", headers=admin).status_code == 202
    body = stack.wait_status(admin, instance_id, {"destroyed"})
    assert all(n["runtime"]["state"] == "stopped" for n in body["nodes"]), body["nodes"]
    assert not disk_dirs(stack, instance_id)
    for host in stack.host_rows(admin):
        assert host["allocated"] == {"cpu": 0, "mem": 0, "disks": 0}, host
    if stack.driver == "podman":
        assert podman("ps", "-aq", "--filter", f"label=paas.instance={instance_id}") == ""
    for node in nodes:
        # gone: its address left with its bridge (never connect then), or nothing answers
        assert not local_link(node["address"]) or node_answer(node["address"], 8080) is None


def test_a_killed_agent_takes_its_host_down_and_back(stack, admin):
    instance_id = stack.launch(admin)
    body = stack.wait_status(admin, instance_id, {"running", "failed"})
    assert body["status"] == "running", body.get("error")
    victim = stack.hosts[1]
    stack.agents[victim].kill()
    host = wait_until(
        lambda: (h := stack.host(admin, victim))["state"] == "down" and h,
        f"host {victim} to go down",
        timeout=30,
    )
    assert "its agent has not reported since" in host["state_reason"], host
    body = stack.wait_status(admin, instance_id, {"degraded"}, timeout=30)
    events = stack.client.get(f"{API}/instances/{instance_id}/events", headers=admin).get_json()
    assert any(
        e["status"] == "degraded" and f"host {victim} is down" in e["message"]
        for e in events["events"]
    ), events
    # a new launch avoids the down host
    other = stack.launch(admin, n=1)
    placed = stack.wait_status(admin, other, {"running", "failed"})
    assert placed["status"] == "running", placed.get("error")
    assert placed["nodes"][0]["host"] != victim
    # the agent comes back: it finds its node still running, the host is up, the instance too
    stack.start_agent(victim)
    wait_until(lambda: stack.host(admin, victim)["state"] == "up", f"host {victim} back up")
    back = stack.wait_status(admin, instance_id, {"running"}, timeout=30)
    assert all(n["runtime"]["state"] == "running" for n in back["nodes"]), back["nodes"]


def test_an_orphan_node_is_removed_by_its_agent(stack, admin):
    """A node no live instance owns (a crash between start and record, a destroy while the host
    was down) is found by the agent's report and stopped."""
    host = stack.hosts[0]
    orphan = "0" * 31 + "1"
    placed = {
        "name": "ghost",
        "host": host,
        "cpu": 1,
        "mem": 64,
        "docker_image": "localhost/paas-node:1",
        "disks": [],
        "networks": {},
        "check_ports": [],
    }
    publish_to_agent(
        stack.rt.celery, stack.rt.config.host_queue(host), "agent.start_node", orphan, placed, {}
    )

    def found() -> bool:
        if stack.driver == "podman":
            return bool(podman("ps", "-aq", "--filter", f"label=paas.instance={orphan}"))
        records = Path(stack.env["PAAS_DATA_DIR"]) / "agents" / host / "state" / "records"
        return any(orphan in p.name for p in records.glob("*.json"))

    # started, reported, and stopped: the report of a node nobody placed orders its stop
    log = stack.tmp_path / "worker.log"
    wait_until(
        lambda: f"{orphan}/ghost, which no live instance owns" in log.read_text(errors="replace"),
        "the pipeline to find the orphan",
    )
    wait_until(lambda: not found(), "the orphan to be removed", timeout=30)


def test_a_redelivered_start_or_stop_does_nothing_twice(stack, admin):
    instance_id = stack.launch(admin, n=1)
    body = stack.wait_status(admin, instance_id, {"running", "failed"})
    assert body["status"] == "running", body.get("error")
    (node,) = body["nodes"]
    first = node["runtime"]["runtime_id"]
    queue = stack.rt.config.host_queue(node["host"])
    networks = {
        stack.network: {"cidr": f"{stack.cidr_prefix}.0/24", "gateway": f"{stack.cidr_prefix}.1"}
    }
    placed = stack.client.get(f"{API}/instances/{instance_id}", headers=admin).get_json()
    with stack.rt.db.session() as session:
        from sqlalchemy import select

        from bigdata_paas.models import Node

        document = session.scalar(select(Node.placement).where(Node.instance_id == instance_id))
    for _ in range(2):
        publish_to_agent(
            stack.rt.celery, queue, "agent.start_node", instance_id, document, networks
        )
    log = stack.tmp_path / f"agent-{node['host']}.log"
    wait_until(lambda: log.read_text().count("agent.start_node") >= 6, "both starts handled")
    again = stack.instance(admin, instance_id)["nodes"][0]["runtime"]
    assert again["state"] == "running" and again["runtime_id"] == first, (again, placed)
    if stack.driver == "podman":
        assert (
            len(podman("ps", "-q", "--filter", f"label=paas.instance={instance_id}").split()) == 1
        )
    assert node_answer(node["address"], 8080)["node"] == node["name"]
    assert stack.client.delete(f"{API}/instances/{instance_id}", headers=admin).status_code == 202
    stack.wait_status(admin, instance_id, {"destroyed"})
    # a stop of a node already gone succeeds
    publish_to_agent(stack.rt.celery, queue, "agent.stop_node", instance_id, document)
    wait_until(
        lambda: (
            log.read_text().count("agent.stop_node") >= 4
            and log.read_text().count("'stopped'") >= 2
        ),
        "the second stop",
    )


def test_a_missing_image_fails_the_launch_and_releases_everything(stack, admin):
    instance_id = stack.launch(admin, image="localhost/no-such-image:0")
    body = stack.wait_status(admin, instance_id, {"running", "failed"})
    assert body["status"] == "failed"
    reason = body["error"]["reason"]
    assert "did not start" in reason and stack.hosts[0][:7] in reason, reason
    if stack.driver == "podman":
        assert "no-such-image" in reason  # the runtime's own words
        assert podman("ps", "-aq", "--filter", f"label=paas.instance={instance_id}") == ""
    for host in stack.host_rows(admin):
        assert host["allocated"] == {"cpu": 0, "mem": 0, "disks": 0}, host


def test_a_host_added_after_its_agent_started_is_managed_at_once(services_env, tmp_path, admin):
    """An agent that runs before its host is in the inventory reports to no host; adding the
    host asks it to report at once (not at its next heartbeat, an hour away here)."""
    from tests.agents.conftest import Agent
    from tests.conftest import Worker, make_app

    env = {**services_env, "PAAS_NODE_DRIVER": "process", "PAAS_AGENT_HEARTBEAT": "3600"}
    app = make_app(env)
    client = app.test_client()
    name = f"late{uuid.uuid4().hex[:6]}"
    worker = Worker(env, tmp_path / "worker.log", queues=("pipeline",)).start()
    agent = None
    try:
        agent = Agent(env, name, tmp_path / "agent.log").start()
        wait_until(
            lambda: f"ignored a report of {name}: no such host" in worker.output(),
            "the agent's first report, about a host the inventory does not have yet",
        )
        host = {"name": name, "address": "127.0.0.1", "cpu": 2, "mem": 1024}
        assert client.post(f"{API}/hosts", json=host, headers=admin).status_code == 201
        seen = wait_until(
            lambda: client.get(f"{API}/hosts/{name}", headers=admin).get_json()["agent"],
            "the host's agent to report",
            timeout=30,
        )
        assert seen["driver"] == "process"
    finally:
        if agent is not None:
            agent.kill()
        worker.stop()
        cleanup_queues(env, [name])
        app.extensions["paas"].db.dispose()
