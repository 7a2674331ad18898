"""The example orquestrators really start one server per node, and really stop them.

Each test renders the example's template with the platform's rendering, places the nodes by
hand on distinct free loopback addresses of the tests' own (as a network would), and runs
``orquestrator.py start|status|stop`` as a subprocess in a private work dir, like the platform.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from tests.examples.helpers import (
    SERVICE_IDS,
    SERVICES,
    Deployment,
    bindable,
    connect,
    folder,
    kill_servers,
    place,
    refused,
    render,
    serving_processes,
)

PARAMS = pytest.mark.parametrize(("name", "version", "launch"), SERVICES, ids=SERVICE_IDS)


@pytest.fixture
def deploy(tmp_path):
    """Make deployments of an example; every server they started is killed afterwards."""
    made: list[Deployment] = []

    def make(name: str, version: str, launch: dict | None = None, instance="place"):
        if instance == "place":
            instance = place(name, version, launch)
        deployment = Deployment(name, version, tmp_path / f"work{len(made)}", instance)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.run("stop")
        deployment.cleanup()


def expect_ok(result, what: str = "") -> None:
    assert result.returncode == 0, (
        f"{what} exit {result.returncode}: {result.stderr}{result.stdout}"
    )


def served(node: dict, port: int, say: bytes = b"hello\n") -> dict:
    """The JSON line a node's server answers a plain TCP client with (also one that says
    nothing: it is answered after a moment)."""
    data = connect(node["address"], port, send=say)
    assert data.endswith(b"\n") and data.count(b"\n") == 1, data
    return json.loads(data)


@PARAMS
def test_start_serves_every_node_then_stop_closes_every_port(deploy, name, version, launch):
    deployment = deploy(name, version, launch)
    started = deployment.run("start")
    expect_ok(started, "start")
    assert started.stderr == ""
    nodes = deployment.instance["nodes"]
    assert len(deployment.pids()) == len(nodes)
    for node in nodes:
        assert f"{node['name']}: serving its config on {node['address']}:" in started.stdout
        for i, port in enumerate(node["check_ports"]):
            config = served(node, port, say=b"" if i == 0 else b"hello\n")
            assert config["name"] == node["name"]
            assert (config["service"], config["version"]) == (name, version)
            assert (config["host"], config["address"]) == (node["host"], node["address"])
            assert config["ports"] == node["check_ports"]
            assert config["services"] == node["services"]
            assert config["role"] and config["settings"]
            assert config["instance"] == "42"
            assert [d["destination"] for d in config["disks"]] == sorted(
                d["destination"] for d in node["disks"]
            )
            assert all(d["origin"].startswith("/data/sd") for d in config["disks"])

    # What a user does: curl a node's address:port.
    node = nodes[-1]
    url = f"http://{node['address']}:{node['check_ports'][0]}/"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert json.loads(response.read())["name"] == node["name"]

    status = deployment.run("status")
    expect_ok(status, "status")
    assert status.stdout.strip().endswith("running")

    stopped = deployment.run("stop")
    expect_ok(stopped, "stop")
    for node in nodes:
        assert f"on {node['name']}" in stopped.stdout
        for port in node["check_ports"]:
            assert refused(node["address"], port), (node["name"], port)
    assert serving_processes(deployment.workdir) == []
    assert deployment.pids() == {}

    after = deployment.run("status")
    assert after.returncode == 3, after
    assert "not running" in after.stdout


@PARAMS
def test_a_second_start_does_not_duplicate_the_servers(deploy, name, version, launch):
    deployment = deploy(name, version, launch)
    expect_ok(deployment.run("start"), "start")
    first = deployment.pids()
    again = deployment.run("start")
    expect_ok(again, "second start")
    assert "already running" in again.stdout
    assert deployment.pids() == first
    assert sorted(serving_processes(deployment.workdir)) == sorted(first.values())
    node = deployment.instance["nodes"][0]
    assert served(node, node["check_ports"][0])["name"] == node["name"]


@PARAMS
def test_stop_without_start_and_stop_twice_exit_0(deploy, name, version, launch):
    deployment = deploy(name, version, launch)
    result = deployment.run("stop")
    expect_ok(result, "stop")
    assert "nothing to stop" in result.stdout
    expect_ok(deployment.run("start"), "start")
    expect_ok(deployment.run("stop"), "stop")
    result = deployment.run("stop")
    expect_ok(result, "second stop")
    assert "nothing to stop" in result.stdout


def _instance_cases(instance: dict) -> dict[str, object]:
    def changed(**node_fields):
        nodes = [dict(instance["nodes"][0], **node_fields), *instance["nodes"][1:]]
        return {**instance, "nodes": nodes}

    without_address = dict(instance["nodes"][0])
    del without_address["address"]
    cases = {
        "not json": "{nodes: [",
        "not an object": [1, 2],
        "no nodes": {**instance, "nodes": []},
        "node without name": {**instance, "nodes": [{"address": "127.20.0.2"}]},
        "bad node name": changed(name="../x"),
        "node without address": {**instance, "nodes": [without_address]},
        "bad port": changed(check_ports=[70000]),
        "no ports": changed(check_ports=[], port=None),
        "services not an object": {**instance, "services": []},
    }
    assert list(cases) == CASES
    return cases


CASES = [
    "not json",
    "not an object",
    "no nodes",
    "node without name",
    "bad node name",
    "node without address",
    "bad port",
    "no ports",
    "services not an object",
]


@pytest.mark.parametrize("case", CASES)
@PARAMS
def test_a_bad_instance_file_exits_2(deploy, name, version, launch, case):
    instance = place(name, version, launch)
    deployment = deploy(name, version, instance=_instance_cases(instance)[case])
    for command in ("start", "status"):
        result = deployment.run(command)
        assert result.returncode == 2, (command, result)
        assert f"{name} orquestrator: " in result.stderr
        assert "instance file" in result.stderr
    assert serving_processes(deployment.workdir) == []


@PARAMS
def test_missing_instance_file_or_bad_usage_exits_2(deploy, name, version, launch):
    deployment = deploy(name, version, launch)
    env = deployment.env()
    del env["PAAS_INSTANCE_FILE"]
    result = deployment.run("start", env=env)
    assert result.returncode == 2
    assert "PAAS_INSTANCE_FILE is not set" in result.stderr
    result = deployment.run("start", env=deployment.env(PAAS_INSTANCE_FILE="/nonexistent.json"))
    assert result.returncode == 2
    assert "cannot read instance file" in result.stderr
    result = deployment.run("restart")
    assert result.returncode == 2
    assert "usage" in result.stderr


@PARAMS
def test_start_fails_cleanly_when_a_port_is_taken(deploy, name, version, launch):
    deployment = deploy(name, version, launch)
    node = deployment.instance["nodes"][-1]
    port = node["check_ports"][-1]
    with socket.socket() as squatter:
        squatter.bind((node["address"], port))
        squatter.listen(1)
        result = deployment.run("start")
    assert result.returncode == 1, result
    assert f"the server of {node['name']} exited" in result.stderr
    assert f"{node['address']}:{port}" in result.stderr
    assert "every server stopped" in result.stderr
    assert serving_processes(deployment.workdir) == []
    assert deployment.pids() == {}
    for other in deployment.instance["nodes"][:-1]:
        assert refused(other["address"], other["check_ports"][0])


def test_two_nodes_on_one_address_and_port_is_refused(deploy):
    instance = place("gluster", "3.7.11", {"size": 2, "disks": 1, "volume.replica": 1})
    instance["nodes"][1]["address"] = instance["nodes"][0]["address"]
    deployment = deploy("gluster", "3.7.11", instance=instance)
    result = deployment.run("start")
    assert result.returncode == 1
    assert "gluster0 and gluster1 would both listen on" in result.stderr
    assert "address of its own" in result.stderr
    assert serving_processes(deployment.workdir) == []


def test_gluster_refuses_bricks_that_are_not_a_multiple_of_the_replica(deploy):
    deployment = deploy("gluster", "3.7.11", {"size": 1, "disks": 1})
    result = deployment.run("start")
    assert result.returncode == 1
    assert "1 bricks is not a multiple of volume.replica=2" in result.stderr
    assert serving_processes(deployment.workdir) == []


def test_gluster_prints_the_volume_it_would_create(deploy):
    deployment = deploy("gluster", "3.7.11", {"size": 2, "disks": 2})
    result = deployment.run("start")
    expect_ok(result, "start")
    first, second = (n["address"] for n in deployment.instance["nodes"])
    assert f"would run on gluster0: gluster peer probe {second}" in result.stdout
    assert (
        f"would run: gluster volume create vol42 replica 2 transport tcp {first}:/data/0/brick "
        f"{second}:/data/0/brick {first}:/data/1/brick {second}:/data/1/brick\n"
    ) in result.stdout
    assert "gluster volume vol42 started (4 bricks, replica 2)" in result.stdout
    settings = served(deployment.instance["nodes"][1], 49153)["settings"]
    assert settings["volume"] == "vol42"
    assert settings["peers"] == [first]
    stop = deployment.run("stop")
    assert "stopping glusterd on gluster0" in stop.stdout
    assert "gluster volume vol42 removed" in stop.stdout


def test_cdh_nodes_know_the_namenode(deploy):
    deployment = deploy("cdh", "5.7.2", {"slaves.number": 2})
    result = deployment.run("start")
    expect_ok(result, "start")
    master, slave0, _slave1 = deployment.instance["nodes"]
    assert "cdh cluster 42 started: 2 datanodes, 2 nodemanagers" in result.stdout
    assert f"fs.defaultFS = hdfs://{master['address']}:8020" in result.stdout
    config = served(slave0, 50010)
    assert config["role"] == "slave"
    assert config["settings"]["fs.defaultFS"] == f"hdfs://{master['address']}:8020"
    assert (
        config["settings"]["dfs.datanode.data.dir"] == "file:///data/0/dfs/dn,file:///data/1/dfs/dn"
    )
    assert served(master, 8032)["role"] == "master"


def test_cassandra_nodes_know_the_seeds(deploy):
    deployment = deploy("cassandra", "3.11", {"nodes": 3, "seeds": 2})
    expect_ok(deployment.run("start"), "start")
    nodes = deployment.instance["nodes"]
    seeds = f"{nodes[0]['address']},{nodes[1]['address']}"
    roles = [served(node, 9042)["role"] for node in nodes]
    assert roles == ["seed", "seed", "node"]
    settings = served(nodes[2], 7000)["settings"]
    assert settings["seeds"] == seeds
    assert settings["listen_address"] == nodes[2]["address"]
    assert settings["cluster_name"] == "demo"
    assert settings["data_file_directories"] == ["/data/0/cassandra/data"]


@PARAMS
def test_status_is_3_when_a_server_died(deploy, name, version, launch):
    deployment = deploy(name, version, launch)
    expect_ok(deployment.run("start"), "start")
    victim, pid = next(iter(deployment.pids().items()))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pid in serving_processes(deployment.workdir) and time.monotonic() < deadline:
        time.sleep(0.05)
    result = deployment.run("status")
    assert result.returncode == 3, result
    assert f"{victim}: not running" in result.stdout
    # start brings the missing one back, and only that one
    others = {k: v for k, v in deployment.pids().items() if k != victim}
    expect_ok(deployment.run("start"), "start again")
    assert {k: v for k, v in deployment.pids().items() if k != victim} == others
    expect_ok(deployment.run("status"), "status")


def test_health_checks_that_connect_and_leave_do_not_disturb_a_server(deploy):
    deployment = deploy("gluster", "3.7.11", {"size": 1, "disks": 1, "volume.replica": 1})
    expect_ok(deployment.run("start"), "start")
    node = deployment.instance["nodes"][0]
    for _ in range(20):
        with socket.create_connection((node["address"], 24007), timeout=2):
            pass  # what the platform's health check does
    idle = socket.create_connection((node["address"], 24007), timeout=2)  # says nothing
    try:
        assert served(node, 49152)["name"] == "gluster0"
        line = connect(node["address"], 24007, send=b"hello\n")
        assert json.loads(line)["name"] == "gluster0"
        assert json.loads(idle.recv(65536))["name"] == "gluster0"  # answered after a moment
    finally:
        idle.close()


def test_servers_exit_by_themselves_when_the_work_dir_is_removed(deploy):
    deployment = deploy("gluster", "3.7.11", {"size": 2, "disks": 1, "volume.replica": 1})
    expect_ok(deployment.run("start"), "start")
    pids = set(deployment.pids().values())
    assert pids
    shutil.rmtree(deployment.workdir / "run")
    deadline = time.monotonic() + 10
    while pids & set(serving_processes(deployment.workdir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pids & set(serving_processes(deployment.workdir))


def test_under_the_platform_runner(tmp_path):
    """Through ``orquestrator.run_script``: scrubbed env, limits, ``nobody`` when root."""
    from bigdata_paas.orquestrator import ScriptLimits, run_script
    from bigdata_paas.orquestrator.runner import reachable_workdir

    name, version = "cassandra", "3.11"
    instance = place(name, version, {"nodes": 2, "seeds": 1})
    script = (folder(name, version) / "orquestrator.py").read_text()
    workdir = tmp_path / "work" / "42"
    real = reachable_workdir(workdir) if os.geteuid() == 0 else workdir
    output: list[str] = []

    def run(command: str):
        return run_script(
            script,
            command,
            instance,
            workdir,
            env={"PAAS_INSTANCE_ID": "42"},
            limits=ScriptLimits(timeout=30),
            on_output=lambda _stream, line: output.append(line),
        )

    try:
        result = run("start")
        assert result.ok, (result, output)  # returned: the servers do not hold its pipes
        for node in instance["nodes"]:
            for port in node["check_ports"]:
                assert served(node, port)["name"] == node["name"]
        assert run("status").ok
        assert run("stop").ok, output
        for node in instance["nodes"]:
            assert refused(node["address"], node["check_ports"][0])
        assert run("status").exit_code == 3
    finally:
        run("stop")
        kill_servers(Path(real))
        if real != workdir:
            shutil.rmtree(real.parent, ignore_errors=True)  # this test's stand-in only


def test_the_readme_by_hand_example_works(deploy):
    """examples/README.md's "To try one by hand" instance file, run as the README says."""
    readme = (folder("gluster", "3.7.11").parents[1] / "README.md").read_text()
    text = readme.split("cat > instance.json <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    instance = json.loads(text)
    for node in instance["nodes"]:
        if not bindable(node["address"], node["check_ports"]):
            pytest.skip(f"{node['address']} is in use here")
    deployment = deploy("gluster", "3.7.11", instance=instance)
    expect_ok(deployment.run("start"), "start")
    expect_ok(deployment.run("status"), "status")
    assert served(instance["nodes"][0], 24007)["name"] == "gluster0"
    with urllib.request.urlopen("http://127.21.0.3:49153/", timeout=5) as response:
        assert json.loads(response.read())["name"] == "gluster1"
    expect_ok(deployment.run("stop"), "stop")
    assert deployment.run("status").returncode == 3


#: each example grown by one node: the option and its value before and after
GROWN = {"gluster": ("size", 3), "cdh": ("slaves.number", 4), "cassandra": ("nodes", 4)}


@PARAMS
def test_scale_out_serves_the_joining_node_and_decommission_stops_it(deploy, name, version, launch):
    key, more = GROWN[name]
    big = place(name, version, {**launch, key: more})
    small = {
        **big,
        "nodes": big["nodes"][:-1],
        "services": render(name, version, {**launch, key: more - 1})[1]["services"],
    }
    joining = big["nodes"][-1]
    deployment = deploy(name, version, instance=small)
    expect_ok(deployment.run("start"), "start")
    previous = deployment.workdir / "previous.json"
    changed = deployment.workdir / "changed.json"
    previous.write_text(json.dumps(small))
    changed.write_text(json.dumps([joining]))
    env = deployment.env(
        PAAS_PREVIOUS_INSTANCE_FILE=str(previous),
        PAAS_CHANGED_NODES_FILE=str(changed),
        PAAS_CHANGED_NODES=joining["name"],
    )

    deployment.instance = big
    deployment.write(big)
    grown = deployment.run("scale-out", env)
    expect_ok(grown, "scale-out")
    assert f"1 node(s) joined: {joining['name']}" in grown.stdout
    assert served(joining, joining["check_ports"][0])["name"] == joining["name"]
    assert sorted(deployment.pids()) == sorted(n["name"] for n in big["nodes"])

    previous.write_text(json.dumps(big))
    deployment.instance = small
    deployment.write(small)
    shrunk = deployment.run("decommission", env)
    expect_ok(shrunk, "decommission")
    assert f"decommissioning {joining['name']}" in shrunk.stdout
    assert all(refused(joining["address"], port) for port in joining["check_ports"])
    assert sorted(deployment.pids()) == sorted(n["name"] for n in small["nodes"])
    for node in small["nodes"]:
        assert served(node, node["check_ports"][0])["name"] == node["name"]
    missing = deployment.run("scale-out")  # outside a resize: no changed nodes file
    assert missing.returncode == 2
    assert "PAAS_CHANGED_NODES_FILE is not set" in missing.stderr
