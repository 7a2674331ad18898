"""The process driver for real: limits from /proc, the address, a scrubbed environment,
idempotence across an agent restart, and stop killing the node's whole session."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import subprocess
import textwrap
from pathlib import Path

import pytest

from bigdata_paas.nodes import NodeStartError, addresses
from bigdata_paas.nodes.process import ProcessDriver, proc_start_time, session_members
from tests.conftest import wait_until
from tests.nodes.support import instance_id, make_spec, node_answer, placed, routed_locally

PYTHON = "/usr/bin/python3"  # executable by nobody, unlike a virtualenv under /root
AS_ROOT = os.geteuid() == 0
NODE_IMAGE = "localhost/paas-node:1"


@pytest.fixture
def driver(data_root):
    driver = ProcessDriver(data_root / "state", host="h1", stop_grace=1)
    yield driver
    for node in driver.list():
        driver.stop(node.instance_id, node.node)


def local_network() -> tuple[str, dict, str]:
    """A network in 127/8 (always on this machine's loopback) and one address in it."""
    prefix = f"127.{random.randint(22, 250)}.{random.randint(0, 255)}"
    name = f"lo{prefix.replace('.', '')}"
    return name, {name: {"cidr": f"{prefix}.0/24", "gateway": f"{prefix}.1"}}, f"{prefix}.7"


def python_node(code: str) -> list[str]:
    return [PYTHON, "-I", "-c", textwrap.dedent(code)]


@pytest.mark.parametrize(("cpu", "mem"), [(1, 128), (1.5, 256)])
def test_limits_read_back_from_proc(driver, cpu, mem):
    iid = instance_id()
    handle = driver.start(make_spec(iid, placed("n0", cpu=cpu, mem=mem, image=NODE_IMAGE)))
    pid = int(handle.runtime_id.split("@")[0])
    limits = Path(f"/proc/{pid}/limits").read_text()
    line = next(x for x in limits.splitlines() if x.startswith("Max address space"))
    assert line.split()[3:5] == [str(mem * 1024 * 1024)] * 2
    assert len(os.sched_getaffinity(pid)) == min(math.ceil(cpu), os.cpu_count())
    info = driver.inspect(iid, "n0")
    assert (info.memory_mb, info.state, info.limits["core"]) == (mem, "running", 0)
    assert info.cpus == min(math.ceil(cpu), os.cpu_count())
    if AS_ROOT:  # the node runs as nobody, with a process limit
        uid = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]
        assert int(uid) == 65534
        assert info.limits["nproc"] == 4096


def test_address_passed_and_answered(driver):
    iid = instance_id()
    net, networks, address = local_network()
    spec = make_spec(
        iid,
        placed("n0", image=NODE_IMAGE, nics=[("eth0", net, address)], check_ports=[7000, 7001]),
        networks,
    )
    driver.start(spec)
    for port in (7000, 7001):
        answer = node_answer(address, port)
        assert (answer["node"], answer["instance"], answer["address"]) == ("n0", iid, address)
    http = node_answer(address, 7001, b"GET / HTTP/1.0\r\n\r\n")
    assert http["node"] == "n0"
    assert driver.inspect(iid, "n0").addresses == {"eth0": address}


def private_network() -> tuple[str, dict, list[str]]:
    """A 10.x network that is no network of this machine (its addresses would go out through
    the default route), and three addresses in it."""
    for _ in range(100):
        prefix = f"10.{random.randint(200, 254)}.{random.randint(0, 255)}"
        if not routed_locally(f"{prefix}.1") and not routed_locally(f"{prefix}.7"):
            name = f"p{prefix.replace('.', '')}"
            cidr = {"cidr": f"{prefix}.0/24", "gateway": f"{prefix}.1"}
            return name, {name: cidr}, [f"{prefix}.{i}" for i in (7, 8, 9)]
    raise AssertionError("no free private network")


@pytest.mark.skipif(not AS_ROOT, reason="adding an address to the host needs root")
def test_a_private_address_is_added_to_the_host_and_removed_with_its_node(driver):
    """A node of a non-loopback pool (the demo's) answers on its own address from the host:
    the driver puts the address on the network's device, and takes it away on stop; the
    device goes with its last address."""
    net, networks, addrs = private_network()
    device = addresses.device_name(net)
    nodes = {}
    try:
        for i, address in enumerate(addrs[:2]):
            iid = instance_id()
            nic = [("eth0", net, address)]
            spec = make_spec(
                iid, placed(f"n{i}", image=NODE_IMAGE, nics=nic, check_ports=[7000]), networks
            )
            driver.start(spec)
            nodes[address] = iid
        assert sorted(addresses.device_addresses(device)) == sorted(addrs[:2])
        for address, iid in nodes.items():
            assert routed_locally(address)
            answer = node_answer(address, 7000)  # checks the address is local first
            assert (answer["instance"], answer["address"]) == (iid, address)
        # a redelivered start finds the node and its address as they are
        first, iid = next(iter(nodes.items()))
        again = driver.start(
            make_spec(
                iid,
                placed("n0", image=NODE_IMAGE, nics=[("eth0", net, first)], check_ports=[7000]),
                networks,
            )
        )
        assert again.created is False
        assert driver.stop(iid, "n0")
        assert addresses.device_addresses(device) == [addrs[1]]
        assert not addresses.is_local(first)
        second_iid = nodes[addrs[1]]
        assert driver.stop(second_iid, "n1")
        assert addresses.device_addresses(device) == []
        gone = subprocess.run(["ip", "link", "show", "dev", device], capture_output=True)
        assert gone.returncode != 0, "the device outlived its last address"
    finally:
        for address in addrs:
            with contextlib.suppress(Exception):
                addresses.detach(net, address)


@pytest.mark.skipif(not AS_ROOT, reason="adding an address to the host needs root")
def test_a_node_that_cannot_start_leaves_no_address_behind(driver):
    net, networks, addrs = private_network()
    spec = make_spec(
        instance_id(),
        placed("n0", command=["/nonexistent/program"], nics=[("eth0", net, addrs[0])]),
        networks,
    )
    with pytest.raises(NodeStartError, match="cannot run /nonexistent/program"):
        driver.start(spec)
    assert addresses.device_addresses(addresses.device_name(net)) == []
    assert not addresses.is_local(addrs[0])


def test_without_root_a_private_address_is_refused_with_what_to_do(driver, monkeypatch):
    net, networks, addrs = private_network()
    monkeypatch.setattr(addresses.os, "geteuid", lambda: 1000)
    spec = make_spec(
        instance_id(), placed("n0", image=NODE_IMAGE, nics=[("eth0", net, addrs[0])]), networks
    )
    with pytest.raises(NodeStartError) as failed:
        driver.start(spec)
    message = str(failed.value)
    assert f"the address {addrs[0]} of network {net} is not on this host" in message
    assert "PAAS_NODE_DRIVER=podman" in message and "loopback range" in message
    assert driver.list() == []
    assert not addresses.is_local(addrs[0])


def test_scrubbed_environment_and_disks(driver, data_root, monkeypatch):
    monkeypatch.setenv("PAAS_SECRET_FOR_TEST", "s3cret")
    monkeypatch.setenv("PAAS_BROKER_URL", "amqp://user:password@broker//")
    iid = instance_id()
    sdb, sdc = data_root / "sdb", data_root / "sdc"
    sdb.mkdir()
    sdc.mkdir()
    command = python_node(
        """
        import json, os, time
        disks = {d["destination"]: d["path"] for d in json.loads(os.environ["PAAS_NODE_DISKS"])}
        try:
            open(os.path.join(disks["/data/1"], "refused"), "w")
            ro = "written"
        except OSError as exc:
            ro = exc.strerror
        report = {"env": dict(os.environ), "ro": ro, "cwd": os.getcwd(), "uid": os.getuid()}
        with open(os.path.join(disks["/data/0"], "report.json"), "w") as f:
            json.dump(report, f)
        time.sleep(100000)
        """
    )
    spec = make_spec(
        iid,
        placed(
            "n0",
            command=command,
            docker_opts="-e FOO='bar baz'",
            disks=[(sdb, "/data/0", "rw"), (sdc, "/data/1", "ro")],
        ),
    )
    driver.start(spec)
    report_file = spec.disk_source(spec.disks[0]) / "report.json"
    report = wait_until(
        lambda: report_file.exists() and json.loads(report_file.read_text()), "report"
    )
    env = report["env"]
    assert "PAAS_SECRET_FOR_TEST" not in env and "PAAS_BROKER_URL" not in env
    # nothing of the agent's environment: only what the driver gives every node
    assert set(env) - {"LC_CTYPE"} == {
        "PATH",
        "HOME",
        "LANG",
        "FOO",
        "PAAS_INSTANCE_ID",
        "PAAS_NODE_NAME",
        "PAAS_NODE_HOST",
        "PAAS_NODE_ADDRESS",
        "PAAS_NODE_PORTS",
        "PAAS_NODE_FILE",
        "PAAS_NODE_DISKS",
    }
    assert env["FOO"] == "bar baz"
    assert (env["PAAS_NODE_NAME"], env["PAAS_INSTANCE_ID"], env["PAAS_NODE_HOST"]) == (
        "n0",
        iid,
        "h1",
    )
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert json.loads(Path(env["PAAS_NODE_FILE"]).read_text())["node"] == "n0"
    assert report["cwd"] == env["HOME"]
    if AS_ROOT:
        assert report["uid"] == 65534
        assert report["ro"] == "Permission denied"
        assert not (spec.disk_source(spec.disks[1]) / "refused").exists()
    assert driver.stop(iid, "n0")
    assert driver.remove_instance_dirs(iid, [str(sdb), str(sdc)]) == [sdb / iid, sdc / iid]
    assert sdb.is_dir() and not (sdb / iid).exists()


def test_memory_limit_is_enforced(driver, data_root):
    iid = instance_id()
    (data_root / "sdb").mkdir()
    command = python_node(
        """
        import json, os, time
        path = json.loads(os.environ["PAAS_NODE_DISKS"])[0]["path"]
        try:
            block = bytearray(300 * 1024 * 1024)
            result = "allocated"
        except MemoryError:
            result = "refused"
        open(os.path.join(path, "result"), "w").write(result)
        time.sleep(100000)
        """
    )
    spec = make_spec(
        iid, placed("n0", mem=128, command=command, disks=[(data_root / "sdb", "/d", "rw")])
    )
    driver.start(spec)
    result = spec.disk_source(spec.disks[0]) / "result"
    assert wait_until(lambda: result.exists() and result.read_text(), "result") == "refused"


def test_idempotent_and_found_again_after_an_agent_restart(driver, data_root):
    iid = instance_id()
    spec = make_spec(iid, placed("n0", image=NODE_IMAGE))
    first = driver.start(spec)
    again = driver.start(spec)
    assert first.created and not again.created and again.runtime_id == first.runtime_id
    # the agent restarts: a new driver on the same state dir finds the node running
    restarted = ProcessDriver(data_root / "state", host="h1", stop_grace=1)
    [found] = restarted.list()
    assert (found.instance_id, found.node, found.state) == (iid, "n0", "running")
    assert found.runtime_id == first.runtime_id
    assert found.labels["paas.host"] == "h1"
    assert not restarted.start(spec).created
    pid = int(first.runtime_id.split("@")[0])
    assert restarted.stop(iid, "n0") is True
    assert proc_start_time(pid) is None
    assert restarted.stop(iid, "n0") is False
    assert restarted.stop(instance_id(), "never") is False
    assert restarted.list() == [] and driver.list() == []


def test_stop_kills_the_whole_session_even_a_node_ignoring_term(driver, data_root):
    iid = instance_id()
    (data_root / "sdb").mkdir()
    command = python_node(
        """
        import json, os, signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # a child in its own process group (same session), as a shell's job would be
        child = subprocess.Popen(["sleep", "100000"], process_group=0)
        path = json.loads(os.environ["PAAS_NODE_DISKS"])[0]["path"]
        open(os.path.join(path, "child"), "w").write(str(child.pid))
        time.sleep(100000)
        """
    )
    spec = make_spec(iid, placed("n0", command=command, disks=[(data_root / "sdb", "/d", "rw")]))
    handle = driver.start(spec)
    pid = int(handle.runtime_id.split("@")[0])
    marker = spec.disk_source(spec.disks[0]) / "child"
    child = int(wait_until(lambda: marker.exists() and marker.read_text(), "the child"))
    assert set(session_members(pid)) >= {pid, child}
    assert os.getpgid(child) != pid  # not in the node's group: only the session finds it
    assert driver.stop(iid, "n0")
    assert session_members(pid) == []
    assert proc_start_time(pid) is None and proc_start_time(child) is None


def test_ended_node_is_listed_exited_then_started_again(driver, data_root):
    iid = instance_id()
    (data_root / "sdb").mkdir()
    command = python_node(
        """
        import json, os, time
        path = json.loads(os.environ["PAAS_NODE_DISKS"])[0]["path"]
        while not os.path.exists(os.path.join(path, "end")):
            time.sleep(0.05)
        """
    )
    spec = make_spec(iid, placed("n0", command=command, disks=[(data_root / "sdb", "/d", "rw")]))
    first = driver.start(spec)
    assert driver.list()[0].state == "running"
    (spec.disk_source(spec.disks[0]) / "end").write_text("")
    wait_until(lambda: driver.list()[0].state == "exited", "the node to end")
    second = driver.start(spec)
    assert second.created and second.runtime_id != first.runtime_id
    assert driver.list()[0].state == "running"


def test_missing_program_fails(driver):
    iid = instance_id()
    with pytest.raises(NodeStartError) as caught:
        driver.start(make_spec(iid, placed("n0", command=["/no/such/program", "x"])))
    assert "cannot run /no/such/program" in caught.value.message
    assert (caught.value.node, caught.value.instance_id) == ("n0", iid)
    assert driver.list() == []


def test_node_that_exits_at_once(driver):
    iid = instance_id()
    command = ["/bin/sh", "-c", "echo cannot-start-here >&2; exit 3"]
    try:
        driver.start(make_spec(iid, placed("n0", command=command)))
    except NodeStartError as exc:
        assert "exited at once with code 3" in exc.message
        assert "cannot-start-here" in exc.message
        assert driver.list() == []
    else:  # it ended just after the driver looked: reconcile sees it exited, and why
        wait_until(lambda: driver.list()[0].state == "exited", "exit")
        assert "cannot-start-here" in driver.logs(iid, "n0")


def test_image_only_node_needs_podman(driver):
    spec = make_spec(instance_id(), placed("n0", image="docker.io/library/redis:7"))
    with pytest.raises(NodeStartError, match="needs the podman driver"):
        driver.start(spec)


def test_state_is_private(driver):
    """A node (as nobody) cannot rewrite its record to make stop kill another process."""
    iid = instance_id()
    driver.start(make_spec(iid, placed("n0", image=NODE_IMAGE)))
    for sub in ("records", "logs", "locks"):
        assert (driver.state_dir / sub).stat().st_mode & 0o777 == 0o700
