"""NodeSpec from the platform's placed node: the shape, the checks, the names."""

from __future__ import annotations

import copy

import pytest

from bigdata_paas.nodes import (
    DRIVERS,
    NodeOptionError,
    container_name,
    network_name,
    node_spec,
    remove_instance_dirs,
    select_driver,
)
from bigdata_paas.nodes.process import ProcessDriver

NETWORKS = {
    "data": {"cidr": "10.240.1.0/24", "gateway": "10.240.1.1", "bridge": "br-data"},
    "admin": {"cidr": "10.240.2.0/24", "gateway": None, "bridge": None},
}

# the shape operations/placement.py placed_node() writes (docs/orquestrators.md)
PLACED = {
    "name": "gluster0",
    "host": "node01",
    "host_address": "192.0.2.10",
    "address": "10.240.1.5",
    "cpu": 2,
    "mem": 1024,
    "port": 24007,
    "check_ports": [24007, 49152],
    "services": ["glusterd"],
    "docker_image": "localhost/paas-node:1",
    "docker_opts": "-e ROLE=server -w /data/0",
    "disks": [
        {
            "name": "disk0",
            "host_disk": "sdb",
            "type": "hdd",
            "size": 2000,
            "origin": "/data/sdb",
            "destination": "/data/0",
            "mode": "rw",
        },
        {"name": "disk1", "host_disk": "sdc", "type": "hdd", "size": 2000, "origin": "/data/sdc"},
    ],
    "networks": {
        "eth0": {
            "networkname": "data",
            "type": "dynamic",
            "address": "10.240.1.5",
            "netmask": "255.255.255.0",
            "prefixlen": 24,
            "gateway": "10.240.1.1",
            "bridge": "br-data",
        },
        "eth1": {"networkname": "admin", "type": "static", "address": "10.240.2.9"},
    },
}
INSTANCE = "0123456789abcdef0123456789abcdef"


def test_from_placed_node():
    spec = node_spec(PLACED, INSTANCE, NETWORKS, image_allow="localhost/", labels={"k": "v"})
    assert spec.name == "gluster0"
    assert spec.host == "node01"
    assert spec.image == "localhost/paas-node:1"
    assert (spec.cpu, spec.mem) == (2, 1024)
    assert [(d.origin, d.destination, d.mode) for d in spec.disks] == [
        ("/data/sdb", "/data/0", "rw"),
        ("/data/sdc", "/data/disk1", "rw"),  # no destination: /data/<disk name>
    ]
    assert [(i.device, i.network, i.cidr, i.gateway, i.address) for i in spec.interfaces] == [
        ("eth0", "data", "10.240.1.0/24", "10.240.1.1", "10.240.1.5"),
        ("eth1", "admin", "10.240.2.0/24", None, "10.240.2.9"),
    ]
    assert spec.options.env_dict() == {"ROLE": "server"}
    assert spec.options.workdir == "/data/0"
    assert spec.check_ports == (24007, 49152)
    assert spec.address == "10.240.1.5"
    assert spec.container_name == f"paas-{INSTANCE}-gluster0"
    assert str(spec.disk_source(spec.disks[0])) == f"/data/sdb/{INSTANCE}/gluster0"
    document = spec.document()
    assert document["node"] == "gluster0" and document["instance"] == INSTANCE
    assert document["services"] == ["glusterd"]
    assert spec.base_env()["PAAS_NODE_PORTS"] == "24007,49152"


def test_port_when_no_check_ports_and_command_string():
    placed = {**PLACED, "command": "serve --role 'a b'"}
    del placed["check_ports"]
    spec = node_spec(placed, INSTANCE, NETWORKS)
    assert spec.check_ports == (24007,)
    assert spec.command == ("serve", "--role", "a b")


def test_disk_root_reroots_origins(tmp_path):
    spec = node_spec(PLACED, INSTANCE, NETWORKS, disk_root=tmp_path / "node01")
    assert spec.disks[0].origin == str(tmp_path / "node01" / "data" / "sdb")


def test_digest_follows_what_shapes_the_node():
    a = node_spec(PLACED, INSTANCE, NETWORKS)
    assert a.digest() == node_spec(copy.deepcopy(PLACED), INSTANCE, NETWORKS).digest()
    assert a.digest() != node_spec({**PLACED, "mem": 2048}, INSTANCE, NETWORKS).digest()
    moved = copy.deepcopy(PLACED)
    moved["networks"]["eth0"]["address"] = "10.240.1.6"
    assert a.digest() != node_spec(moved, INSTANCE, NETWORKS).digest()


def _with(path: str, value) -> dict:
    placed = copy.deepcopy(PLACED)
    target = placed
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return placed


BAD = [
    # (field path, value, option the error names)
    ("name", "bad name", "node"),
    ("name", "-rf", "node"),
    ("host", "a/b", "host"),
    ("cpu", 0, "cpu"),
    ("cpu", "2", "cpu"),
    ("mem", 2, "mem"),
    ("mem", 1.5, "mem"),
    ("check_ports", [0], "check_ports"),
    ("check_ports", [70000], "check_ports"),
    ("docker_image", "--privileged", "docker_image"),
    ("docker_opts", "--privileged", "--privileged"),
    ("command", ["a", None], "command"),
    ("disks.0.destination", "relative", "disk destination"),
    ("disks.0.destination", "/data/../etc", "disk destination"),
    ("disks.0.destination", "/data/0:/etc", "disk destination"),
    ("disks.0.destination", "/data/0,ro", "disk destination"),
    ("disks.0.destination", "/", "disk destination"),
    ("disks.0.origin", "/data/sdb:/x", "disk origin"),
    ("disks.0.origin", None, "disks"),
    ("disks.0.mode", "rwx", "disk mode"),
    ("disks.1.destination", "/data/0", "disks"),  # two disks on one destination
    ("networks.eth0.networkname", "nope", "networks"),
    ("networks.eth0.address", "10.9.9.9", "networks"),
    ("networks.eth0.address", "not-an-ip", "networks"),
    ("networks.eth0.address", None, "networks"),
    ("networks.eth0.address", "10.240.1.1", "networks"),  # the gateway's
    ("networks.eth0.address", "10.240.1.0", "networks"),
    ("networks.eth0.address", "10.240.1.255", "networks"),
]


@pytest.mark.parametrize(("path", "value", "option"), BAD)
def test_refused(path, value, option):
    with pytest.raises(NodeOptionError) as caught:
        node_spec(_with(path, value), INSTANCE, NETWORKS)
    assert caught.value.option == option


def test_disallowed_image():
    with pytest.raises(NodeOptionError) as caught:
        node_spec(PLACED, INSTANCE, NETWORKS, image_allow=["registry.example.org/"])
    assert caught.value.option == "docker_image"


@pytest.mark.parametrize("instance", ["", "a-b", "../x", "a/b", "x" * 65, "a.b"])
def test_instance_ids(instance):
    with pytest.raises(NodeOptionError):
        node_spec(PLACED, instance, NETWORKS)
    with pytest.raises(NodeOptionError):
        container_name(instance, "n0")


def test_names():
    assert container_name("abc", "master0") == "paas-abc-master0"
    assert network_name("demo") == "paas-demo"
    assert network_name("demo", "t1a2.b") == "paas-t1a2.b-demo"  # a deployment's own
    with pytest.raises(NodeOptionError):
        network_name("a b")
    with pytest.raises(NodeOptionError):
        network_name("demo", "-x")


def test_remove_instance_dirs(tmp_path):
    kept = tmp_path / "sdb" / "other"
    gone = tmp_path / "sdb" / INSTANCE / "gluster0"
    for folder in (kept, gone):
        folder.mkdir(parents=True)
        (folder / "f").write_text("x")
    removed = remove_instance_dirs(INSTANCE, [str(tmp_path / "sdb"), str(tmp_path / "none")])
    assert removed == [tmp_path / "sdb" / INSTANCE]
    assert not (tmp_path / "sdb" / INSTANCE).exists()
    assert (kept / "f").exists()
    assert remove_instance_dirs(INSTANCE, [str(tmp_path / "sdb")]) == []
    with pytest.raises(NodeOptionError):
        remove_instance_dirs("..", [str(tmp_path / "sdb")])


def test_select_driver(tmp_path):
    assert DRIVERS == ("auto", "podman", "process")
    driver = select_driver("process", state_dir=tmp_path, containers_conf="/ignored")
    assert isinstance(driver, ProcessDriver)
    with pytest.raises(ValueError, match="PAAS_NODE_DRIVER"):
        select_driver("docker", state_dir=tmp_path)
