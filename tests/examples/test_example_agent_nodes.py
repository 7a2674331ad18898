"""The example orquestrators where host agents run the nodes (each node has a ``runtime``).

The nodes are started by the real node runtime (the process driver, standing in for the
paas-node image), on loopback addresses of the tests' own, as an agent would; the instance file
carries each node's ``runtime`` as the platform writes it. ``start`` then configures and
verifies instead of serving: it starts no server of its own, checks each node answers as
itself, and ``stop`` leaves the nodes running (the platform stops them through the agents).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bigdata_paas.nodes import node_spec
from bigdata_paas.nodes.process import ProcessDriver
from tests.examples.helpers import (
    SERVICE_IDS,
    SERVICES,
    Deployment,
    connect,
    place,
    refused,
    serving_processes,
)

PARAMS = pytest.mark.parametrize(("name", "version", "launch"), SERVICES, ids=SERVICE_IDS)
IMAGE = "localhost/paas-node:1"


@pytest.fixture
def agent(data_root) -> Iterator[ProcessDriver]:
    driver = ProcessDriver(data_root / "agent", host="node01", stop_grace=1, create_origins=True)
    yield driver
    for node in driver.list(host=""):
        driver.stop(node.instance_id, node.node)


def run_nodes(driver: ProcessDriver, instance: dict, data_root) -> dict:
    """Start every node of ``instance`` as its agent would, and give each its ``runtime``
    (the platform's record of the agent's report)."""
    for node in instance["nodes"]:
        assert node["docker_image"] == IMAGE  # the examples' default image
        nic = node["networks"]["eth0"]
        network = {nic["networkname"]: {"cidr": f"{node['address']}/32"}}
        placed = {
            **node,
            "networks": {"eth0": {**nic}},
            "disks": [
                {**d, "origin": str(data_root / "disks" / d["origin"].strip("/"))}
                for d in node["disks"]
            ],
        }
        handle = driver.start(node_spec(placed, instance["id"], network))
        node["runtime"] = {
            "state": "running",
            "host": node["host"],
            "driver": handle.driver,
            "name": handle.name,
            "runtime_id": handle.runtime_id,
        }
    return instance


def served(node: dict, port: int) -> dict:
    return json.loads(
        connect(node["address"], port, send=b"GET / HTTP/1.0\r\n\r\n").split(b"\r\n\r\n", 1)[1]
    )


@pytest.fixture
def deploy(tmp_path):
    made: list[Deployment] = []

    def make(name: str, version: str, instance: dict) -> Deployment:
        deployment = Deployment(name, version, tmp_path / f"work{len(made)}", instance)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.run("stop")
        deployment.cleanup()


@PARAMS
def test_start_verifies_agent_nodes_and_stop_leaves_them_to_the_platform(
    agent, deploy, data_root, name, version, launch
):
    instance = run_nodes(agent, place(name, version, launch, instance_id="42"), data_root)
    deployment = deploy(name, version, instance)
    started = deployment.run("start")
    assert started.returncode == 0, started.stderr + started.stdout
    assert started.stderr == ""
    assert serving_processes(deployment.workdir) == []  # no server of its own
    assert deployment.pids() == {}
    for node in instance["nodes"]:
        ports = ",".join(map(str, node["check_ports"]))
        assert (
            f"{node['name']}: process node {node['runtime']['name']} on {node['host']} answers "
            f"as itself on {node['address']}:{ports}"
        ) in started.stdout
        assert f"configure {node['name']} as " in started.stdout
        # what answers is the agent's node: the platform's document of it
        answer = served(node, node["check_ports"][-1])
        assert (answer["node"], answer["instance"], answer["host"]) == (
            node["name"],
            "42",
            node["host"],
        )

    status = deployment.run("status")
    assert status.returncode == 0, status.stdout
    assert status.stdout.strip().endswith("running")

    stopped = deployment.run("stop")
    assert stopped.returncode == 0, stopped.stderr
    names = ", ".join(n["name"] for n in instance["nodes"])
    assert f"{names}: run by their hosts' agents; the platform stops them" in stopped.stdout
    assert "stopped 0 node server(s)" in stopped.stdout
    for node in instance["nodes"]:  # still there: the agents stop them, not the orquestrator
        assert served(node, node["check_ports"][0])["node"] == node["name"]


def test_gluster_prints_its_volume_with_agent_nodes(agent, deploy, data_root):
    instance = run_nodes(agent, place("gluster", "3.7.11", {"size": 2, "disks": 2}), data_root)
    started = deploy("gluster", "3.7.11", instance).run("start")
    assert started.returncode == 0, started.stderr
    first, second = (n["address"] for n in instance["nodes"])
    assert f"would run on gluster0: gluster peer probe {second}" in started.stdout
    assert f"gluster volume create vol42 replica 2 transport tcp {first}:/data/0/brick" in (
        started.stdout
    )
    line = next(x for x in started.stdout.splitlines() if x.startswith("configure gluster1 as "))
    settings = json.loads(line.split(": ", 1)[1])
    assert settings["peers"] == [first] and settings["volume"] == "vol42"


def test_a_node_answering_as_another_fails_start_at_once(agent, deploy, data_root):
    instance = run_nodes(agent, place("cassandra", "3.11", {"nodes": 2, "seeds": 1}), data_root)
    one, two = instance["nodes"]
    # the instance file has the two addresses swapped (a stale or wrong record)
    one["address"], two["address"] = two["address"], one["address"]
    deployment = deploy("cassandra", "3.11", instance)
    started = deployment.run("start")
    assert started.returncode == 1, started.stdout
    assert (
        f"cassandra0 ({one['runtime']['name']} on {one['host']}) does not answer as itself on "
        f"{one['address']}:9042: answered as node cassandra1 of instance 42"
    ) in started.stderr
    assert serving_processes(deployment.workdir) == []


def test_status_says_which_agent_node_does_not_answer(agent, deploy, data_root):
    instance = run_nodes(agent, place("cdh", "5.7.2", {"slaves.number": 1}), data_root)
    deployment = deploy("cdh", "5.7.2", instance)
    assert deployment.run("start").returncode == 0
    master, slave = instance["nodes"]
    agent.stop("42", slave["name"])  # the node went away under the platform
    assert refused(slave["address"], slave["check_ports"][0])
    status = deployment.run("status")
    assert status.returncode == 3, status.stdout
    assert f"{master['name']}: running ({master['runtime']['name']}" in status.stdout
    assert f"{slave['name']}: not answering as itself" in status.stdout
    assert "no answer" in status.stdout
