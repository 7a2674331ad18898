"""The podman driver against real podman: limits, disks, addresses, idempotence, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bigdata_paas.nodes import NodeNetworkError, NodeStartError
from bigdata_paas.nodes.podman import PodmanDriver
from tests.conftest import wait_until
from tests.nodes.support import (
    RUN,
    assert_local,
    instance_id,
    make_spec,
    node_answer,
    placed,
    podman,
    remove_labelled,
)


def inspect_raw(name: str) -> dict:
    done = podman("container", "inspect", "--format", "json", name)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[0]


def count_containers(name: str) -> int:
    # podman's name filter is a regex: anchor it
    out = podman("ps", "--all", "--quiet", "--filter", f"name=^{name}$").stdout
    return len(out.split())


def exec_in(name: str, *command: str) -> tuple[int, str]:
    done = podman("exec", name, *command)
    return done.returncode, done.stdout + done.stderr


def cgroup_v1(kind: str, container_id: str, filename: str) -> str | None:
    path = Path(f"/sys/fs/cgroup/{kind}/libpod_parent/libpod-{container_id}/{filename}")
    return path.read_text().strip() if path.exists() else None


@pytest.mark.parametrize(("cpu", "mem"), [(1, 128), (0.5, 64)])
def test_limits_read_back(podman_driver: PodmanDriver, node_image, cpu, mem):
    iid = instance_id()
    handle = podman_driver.start(make_spec(iid, placed("n0", cpu=cpu, mem=mem, image=node_image)))
    assert handle.created and handle.driver == "podman"
    raw = inspect_raw(handle.name)
    assert raw["HostConfig"]["NanoCpus"] == int(cpu * 1e9)
    assert raw["HostConfig"]["Memory"] == mem * 1024 * 1024
    assert raw["HostConfig"]["MemorySwap"] == mem * 1024 * 1024  # no swap on top
    assert raw["Config"]["Hostname"] == "n0"
    labels = raw["Config"]["Labels"]
    assert (labels["paas.instance"], labels["paas.node"], labels["paas.host"]) == (iid, "n0", "h1")
    assert labels["paas.test"] == RUN
    info = podman_driver.inspect(iid, "n0")
    assert (info.cpus, info.memory_mb, info.state) == (cpu, mem, "running")
    # and the kernel enforces them (cgroup v1 here; other layouts are not read)
    memory = cgroup_v1("memory", raw["Id"], "memory.limit_in_bytes")
    if memory is not None:
        assert int(memory) == mem * 1024 * 1024
        quota = int(cgroup_v1("cpu", raw["Id"], "cpu.cfs_quota_us"))
        period = int(cgroup_v1("cpu", raw["Id"], "cpu.cfs_period_us"))
        assert quota / period == cpu
    code, out = exec_in(handle.name, "hostname")
    assert (code, out.strip()) == (0, "n0")


def test_disks_mounted_with_their_mode(podman_driver, node_image, data_root):
    iid = instance_id()
    sdb, sdc = data_root / "sdb", data_root / "sdc"
    sdb.mkdir()
    sdc.mkdir()
    spec = make_spec(
        iid,
        placed("n0", image=node_image, disks=[(sdb, "/data/0", "rw"), (sdc, "/data/1", "ro")]),
    )
    handle = podman_driver.start(spec)
    rw_dir, ro_dir = (spec.disk_source(d) for d in spec.disks)
    assert rw_dir == sdb / iid / "n0" and rw_dir.is_dir() and ro_dir.is_dir()
    code, out = exec_in(handle.name, "sh", "-c", "echo written-inside > /data/0/file")
    assert code == 0, out
    assert (rw_dir / "file").read_text() == "written-inside\n"
    (ro_dir / "seen").write_text("from the host\n")
    code, out = exec_in(handle.name, "cat", "/data/1/seen")
    assert (code, out) == (0, "from the host\n")
    code, out = exec_in(handle.name, "sh", "-c", "echo no > /data/1/refused")
    assert code != 0 and "Read-only file system" in out
    assert not (ro_dir / "refused").exists()
    mounts = {m.destination: m for m in podman_driver.inspect(iid, "n0").mounts}
    assert (mounts["/data/0"].source, mounts["/data/0"].mode) == (str(rw_dir), "rw")
    assert (mounts["/data/1"].source, mounts["/data/1"].mode) == (str(ro_dir), "ro")
    # destroy: the node goes, then the instance's directories, never the disk itself
    assert podman_driver.stop(iid, "n0")
    removed = podman_driver.remove_instance_dirs(iid, [str(sdb), str(sdc)])
    assert removed == [sdb / iid, sdc / iid]
    assert sdb.is_dir() and not (sdb / iid).exists()


def test_missing_disk_origin_fails(podman_driver, node_image, data_root):
    iid = instance_id()
    spec = make_spec(iid, placed("n0", image=node_image, disks=[(data_root / "no", "/d", "rw")]))
    with pytest.raises(NodeStartError, match="is the disk mounted"):
        podman_driver.start(spec)
    assert count_containers(spec.container_name) == 0


def test_static_address_answers_with_its_own_config(podman_driver, node_image, subnet):
    iid = instance_id()
    data, admin = subnet(), subnet()
    net_a, net_b = f"a{iid[:8]}", f"b{iid[:8]}"
    networks = {
        net_a: {"cidr": str(data), "gateway": str(data[1])},
        net_b: {"cidr": str(admin), "gateway": str(admin[1])},
    }
    nodes = {
        name: make_spec(
            iid,
            placed(
                name,
                image=node_image,
                nics=[("eth0", net_a, str(data[i + 10])), ("eth1", net_b, str(admin[i + 10]))],
                check_ports=[7000, 7001],
            ),
            networks,
        )
        for i, name in enumerate(("master0", "slave0"))
    }
    for spec in nodes.values():
        podman_driver.start(spec)
    for i, (name, spec) in enumerate(nodes.items()):
        address = str(data[i + 10])
        assert spec.address == address
        assert_local(address)  # on the test bridge, not through a gateway
        for port in (7000, 7001):
            answer = node_answer(address, port)
            assert (answer["node"], answer["instance"], answer["address"]) == (name, iid, address)
        http = node_answer(address, 7000, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        assert http["node"] == name
        # the second interface, on its own network, with its device name
        assert node_answer(str(admin[i + 10]), 7001)["node"] == name
        code, out = exec_in(spec.container_name, "ip", "-o", "addr", "show", "eth1")
        assert code == 0 and str(admin[i + 10]) in out
        addresses = podman_driver.inspect(iid, name).addresses
        assert addresses == {f"paas-{net_a}": address, f"paas-{net_b}": str(admin[i + 10])}


def test_start_and_stop_are_idempotent(podman_driver, node_image):
    iid = instance_id()
    spec = make_spec(iid, placed("n0", image=node_image))
    first = podman_driver.start(spec)
    again = podman_driver.start(spec)
    assert first.created and not again.created
    assert again.runtime_id == first.runtime_id
    assert count_containers(spec.container_name) == 1
    assert podman_driver.stop(iid, "n0") is True
    assert podman_driver.stop(iid, "n0") is False
    assert podman_driver.stop(instance_id(), "never") is False
    assert count_containers(spec.container_name) == 0
    assert podman_driver.inspect(iid, "n0") is None


def test_stopped_or_changed_node_is_made_again(podman_driver, node_image):
    iid = instance_id()
    spec = make_spec(iid, placed("n0", image=node_image, mem=64))
    first = podman_driver.start(spec)
    assert podman("stop", "--time", "1", spec.container_name).returncode == 0
    assert podman_driver.list(instance_id=iid)[0].state == "exited"
    second = podman_driver.start(spec)
    assert second.created and second.runtime_id != first.runtime_id
    assert podman_driver.inspect(iid, "n0").state == "running"
    # placed again with more memory: the running container is replaced, not kept
    bigger = make_spec(iid, placed("n0", image=node_image, mem=96))
    third = podman_driver.start(bigger)
    assert third.created and podman_driver.inspect(iid, "n0").memory_mb == 96
    assert count_containers(spec.container_name) == 1


def test_list_by_labels(podman_driver, node_image):
    a, b = instance_id(), instance_id()
    podman_driver.start(make_spec(a, placed("n0", image=node_image)))
    podman_driver.start(make_spec(a, placed("n1", image=node_image)))
    podman_driver.start(make_spec(b, placed("n0", image=node_image, host="h2")))
    case = {"paas.test": RUN, "paas.case": podman_driver.labels["paas.case"]}
    on_h1 = podman_driver.list(labels=case)
    assert [(n.instance_id, n.node, n.host, n.state) for n in on_h1] == sorted(
        [(a, "n0", "h1", "running"), (a, "n1", "h1", "running")]
    )
    assert [n.node for n in podman_driver.list(instance_id=a, labels=case)] == ["n0", "n1"]
    on_h2 = podman_driver.list(host="h2", labels=case)
    assert [(n.instance_id, n.node) for n in on_h2] == [(b, "n0")]
    assert podman_driver.list(instance_id=instance_id()) == []


def test_deployments_sharing_podman_see_only_their_own_nodes_and_networks(
    podman_session, node_image, data_root, case, subnet
):
    """Two agents of one host name in two deployments (a test run beside a demo): each
    lists only its deployment's containers, and each deployment's network ``demo`` is its
    own podman network, with its own subnet."""
    drivers = {
        scope: PodmanDriver(
            data_root / scope,
            host="node01",
            labels={"paas.test": RUN, "paas.case": case, "paas.deployment": scope},
            scope=scope,
            stop_grace=1,
        )
        for scope in (f"a{case}", f"b{case}")
    }
    try:
        started = {}
        for scope, driver in drivers.items():
            net = subnet()
            networks = {"demo": {"cidr": str(net), "gateway": str(net[1])}}
            iid = instance_id()
            nic = [("eth0", "demo", str(net[5]))]
            node = placed("n0", image=node_image, nics=nic, host="node01", check_ports=[7000])
            driver.start(make_spec(iid, node, networks))
            started[scope] = (iid, net)
        for scope, driver in drivers.items():
            iid, net = started[scope]
            assert [(n.instance_id, n.host) for n in driver.list(host="node01")] == [
                (iid, "node01")
            ]
            found = json.loads(podman("network", "inspect", f"paas-{scope}-demo").stdout)[0]
            assert found["subnets"][0]["subnet"] == str(net)
            assert node_answer(str(net[5]), 7000)["instance"] == iid  # its own, on its own
    finally:
        remove_labelled(f"paas.case={case}")


def test_docker_opts_applied(podman_driver, node_image, data_root):
    iid = instance_id()
    (data_root / "sdb").mkdir()
    spec = make_spec(
        iid,
        placed(
            "n0",
            image=node_image,
            docker_opts="-e GREETING='hello world' -w /data/0 --user 1000:1000",
            disks=[(data_root / "sdb", "/data/0", "rw")],
        ),
    )
    handle = podman_driver.start(spec)
    code, out = exec_in(handle.name, "sh", "-c", 'echo "$GREETING|$(pwd)|$(id -u)|$PAAS_NODE_NAME"')
    assert (code, out.strip()) == (0, "hello world|/data/0|1000|n0")
    code, out = exec_in(handle.name, "sh", "-c", "touch /data/0/mine && cat /etc/paas/node.json")
    assert code == 0 and json.loads(out)["node"] == "n0"
    assert (spec.disk_source(spec.disks[0]) / "mine").stat().st_uid == 1000
    # the node's config is read-only to it
    code, out = exec_in(handle.name, "sh", "-c", "echo x > /etc/paas/node.json")
    assert code != 0


def test_command_runs_beside_the_config_server(podman_driver, node_image, subnet):
    iid = instance_id()
    net = subnet()
    networks = {f"c{iid[:8]}": {"cidr": str(net), "gateway": str(net[1])}}
    command = ["sh", "-c", "echo started > /tmp/marker; exec sleep 100000"]
    spec = make_spec(
        iid,
        placed(
            "n0",
            image=node_image,
            command=command,
            nics=[("eth0", f"c{iid[:8]}", str(net[5]))],
            check_ports=[8000],
        ),
        networks,
    )
    handle = podman_driver.start(spec)
    assert node_answer(str(net[5]), 8000)["node"] == "n0"
    assert exec_in(handle.name, "cat", "/tmp/marker") == (0, "started\n")


def test_missing_image_fails_at_once_with_podmans_reason(podman_driver):
    iid = instance_id()
    spec = make_spec(iid, placed("n0", image=f"localhost/paas-missing-{iid[:8]}:1"))
    with pytest.raises(NodeStartError) as caught:
        podman_driver.start(spec)
    # podman's own words, and no attempt to reach a registry (--pull=never)
    assert "image not known" in caught.value.reason
    assert "pull" not in caught.value.reason.lower()
    assert (caught.value.node, caught.value.instance_id) == ("n0", iid)
    assert count_containers(spec.container_name) == 0


def test_bad_command_fails_with_the_runtimes_reason(podman_driver, node_image):
    iid = instance_id()
    spec = make_spec(iid, placed("n0", image=node_image, docker_opts="--entrypoint /no/such"))
    with pytest.raises(NodeStartError) as caught:
        podman_driver.start(spec)
    assert "/no/such" in caught.value.reason and "no such file" in caught.value.reason.lower()
    assert count_containers(spec.container_name) == 0


def test_node_that_exits_at_once_fails_with_its_output(podman_driver, node_image):
    iid = instance_id()
    command = ["sh", "-c", "echo cannot-start-here >&2; exit 3"]
    spec = make_spec(iid, placed("n0", image=node_image, command=command))
    try:
        podman_driver.start(spec)
    except NodeStartError as exc:
        assert "exited at once with code 3" in exc.message
        assert "cannot-start-here" in exc.message
        assert count_containers(spec.container_name) == 0
    else:
        # it ended just after `podman run` returned: reconcile sees it exited, and why
        wait_until(lambda: podman_driver.list(instance_id=iid)[0].state == "exited", "exit")
        assert "cannot-start-here" in podman_driver.logs(iid, "n0")


def test_node_without_image(podman_driver):
    spec = make_spec(instance_id(), placed("n0", command=["sleep", "1"]))
    with pytest.raises(NodeStartError, match="names no docker_image"):
        podman_driver.start(spec)


def test_networks(podman_driver, subnet, case):
    net, other = subnet(), subnet()
    name = f"n{case}"
    assert podman_driver.ensure_network(name, str(net), str(net[1])) == f"paas-{name}"
    assert podman_driver.ensure_network(name, str(net), str(net[1])) == f"paas-{name}"
    found = json.loads(podman("network", "inspect", f"paas-{name}").stdout)[0]
    assert found["subnets"] == [{"subnet": str(net), "gateway": str(net[1])}]
    assert found["labels"]["paas.network"] == name and found["labels"]["paas.test"] == RUN
    with pytest.raises(NodeNetworkError, match="subnet"):
        podman_driver.ensure_network(name, str(other), str(other[1]))
    with pytest.raises(NodeNetworkError, match="gateway"):
        podman_driver.ensure_network(name, str(net), str(net[2]))
    with pytest.raises(NodeNetworkError, match="loopback"):
        podman_driver.ensure_network(f"l{case}", "127.20.0.0/16", "127.20.0.1")
    assert podman_driver.remove_network(name) is True
    assert podman_driver.remove_network(name) is False


def test_address_taken_is_refused_with_podmans_reason(podman_driver, node_image, subnet):
    """Two nodes given one address (the platform never does it): podman says no, and why."""
    iid = instance_id()
    net = subnet()
    name = f"g{iid[:8]}"
    networks = {name: {"cidr": str(net), "gateway": str(net[1])}}
    first, second = (
        make_spec(iid, placed(node, image=node_image, nics=[("eth0", name, str(net[7]))]), networks)
        for node in ("n0", "n1")
    )
    podman_driver.start(first)
    with pytest.raises(NodeStartError) as caught:
        podman_driver.start(second)
    assert "already allocated" in caught.value.reason
    assert count_containers(second.container_name) == 0
    assert podman_driver.inspect(iid, "n0").state == "running"
