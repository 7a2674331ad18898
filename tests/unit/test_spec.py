"""Instance specs: shape, every field's rules, normalization, node roles."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bigdata_paas.errors import SpecError
from bigdata_paas.rendering import node_roles, validate_spec


def node(**fields: Any) -> dict[str, Any]:
    return {"cpu": 2, "mem": 1024, **fields}


def spec_with(**fields: Any) -> dict[str, Any]:
    return {"nodes": {"master0": node(**fields)}}


FULL = {
    "nodes": {
        "master0": {
            "cpu": 4,
            "mem": 4096,
            "disks": {
                "data": {
                    "type": "ssd",
                    "destination": "/data",
                    "mode": "rw",
                    "origin": "/dev/sdb",
                    "size": 100,
                }
            },
            "networks": {
                "eth0": {"networkname": "admin"},
                "eth1": {"networkname": "storage", "type": "static", "address": "10.0.0.5"},
                "eth2": {"networkname": "public", "type": "dynamic", "address": "1.2.3.4"},
            },
            "required_node": "host1",
            "constraints": {"rack": "r1"},
            "port": 8020,
            "check_ports": [8020, 50070],
            "docker_image": "cdh:5.7.2",
            "docker_opts": "--privileged",
            "tags": ["master"],
            "services": ["namenode"],
            "host": "somewhere",
            "id": "abc",
            "status": "running",
            "custom": {"kept": [1, 2]},
        },
        "slave0": {"cpu": 1, "mem": 512, "disks": 2},
    },
    "services": {
        "namenode": {"nodes": ["master0"], "port": 8020},
        "datanode": {"nodes": ["slave0", "master0"]},
    },
    "extra": {"kept": True},
}


def test_valid_spec_is_normalized() -> None:
    original = copy.deepcopy(FULL)
    out = validate_spec(FULL, max_nodes=10)
    assert original == FULL  # the input is untouched
    master = out["nodes"]["master0"]
    assert "host" not in master and "id" not in master and "status" not in master
    assert master["disks"] == {
        "data": {"type": "ssd", "destination": "/data", "mode": "rw", "size": 100}
    }
    assert master["networks"] == {
        "eth0": {"networkname": "admin", "type": "dynamic"},
        "eth1": {"networkname": "storage", "type": "static", "address": "10.0.0.5"},
        "eth2": {"networkname": "public", "type": "dynamic"},
    }
    assert master["custom"] == {"kept": [1, 2]}
    assert master["custom"] is not FULL["nodes"]["master0"]["custom"]
    assert master["check_ports"] == [8020, 50070]
    assert out["nodes"]["slave0"] == {
        "cpu": 1,
        "mem": 512,
        "disks": {"disk0": {}, "disk1": {}},
        "networks": {},
    }
    assert list(out["nodes"]) == ["master0", "slave0"]
    assert out["services"] == FULL["services"]
    assert out["extra"] == {"kept": True}


def test_minimal_spec_gets_defaults() -> None:
    assert validate_spec({"nodes": {"n": {"cpu": 1, "mem": 1}}}, max_nodes=1) == {
        "nodes": {"n": {"cpu": 1, "mem": 1, "disks": {}, "networks": {}}},
        "services": {},
    }


@pytest.mark.parametrize(
    ("disks", "expected"),
    [
        (0, {}),
        (1, {"disk0": {}}),
        (3, {"disk0": {}, "disk1": {}, "disk2": {}}),
        ({}, {}),
        ({"d": {}}, {"d": {}}),
    ],
)
def test_disk_forms(disks: Any, expected: dict) -> None:
    out = validate_spec(spec_with(disks=disks), max_nodes=1)
    assert out["nodes"]["master0"]["disks"] == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (None, "instance spec must be an object with nodes, got null"),
        ([], "instance spec must be an object with nodes, got a list"),
        ({}, "nodes: is required"),
        ({"nodes": []}, "nodes: must be an object of nodes, got a list"),
        ({"nodes": {}}, "nodes: an instance needs at least one node"),
        ({"nodes": {f"n{i}": node() for i in range(4)}}, "instance has 4 nodes; the maximum is 3"),
    ],
)
def test_spec_shape(spec: Any, message: str) -> None:
    with pytest.raises(SpecError) as exc:
        validate_spec(spec, max_nodes=3)
    assert exc.value.message == message


@pytest.mark.parametrize(
    ("fields", "path", "fragment"),
    [
        ({"cpu": "two"}, "nodes.master0.cpu", 'must be an integer >= 1, got "two"'),
        ({"cpu": 0}, "nodes.master0.cpu", "must be an integer >= 1, got 0"),
        ({"cpu": True}, "nodes.master0.cpu", "must be an integer >= 1, got true"),
        ({"cpu": 2.0}, "nodes.master0.cpu", "must be an integer >= 1, got 2.0"),
        ({"cpu": 2**40}, "nodes.master0.cpu", "must be at most 2147483647"),
        ({"mem": -5}, "nodes.master0.mem", "must be an integer >= 1, got -5"),
        ({"mem": None}, "nodes.master0.mem", "must be an integer >= 1, got null"),
        ({"disks": -1}, "nodes.master0.disks", "disk count must be between 0 and 256"),
        ({"disks": 10**9}, "nodes.master0.disks", "disk count must be between 0 and 256"),
        ({"disks": True}, "nodes.master0.disks", "must be an object of disks or a disk count"),
        ({"disks": ["a"]}, "nodes.master0.disks", "must be an object of disks or a disk count"),
        ({"disks": {"d": "ssd"}}, "nodes.master0.disks.d", 'must be an object, got "ssd"'),
        ({"disks": {"d": {"type": 1}}}, "nodes.master0.disks.d.type", "must be a string, got 1"),
        (
            {"disks": {"d": {"destination": []}}},
            "nodes.master0.disks.d.destination",
            "must be a string",
        ),
        ({"disks": {"d": {"mode": False}}}, "nodes.master0.disks.d.mode", "must be a string"),
        ({"disks": {"../x": {}}}, "nodes.master0.disks.../x", "invalid disk name"),
        ({"networks": []}, "nodes.master0.networks", "must be an object of network devices"),
        ({"networks": {"eth0": "admin"}}, "nodes.master0.networks.eth0", "must be an object"),
        ({"networks": {"eth0": {}}}, "nodes.master0.networks.eth0.networkname", "is required"),
        (
            {"networks": {"eth0": {"networkname": ""}}},
            "nodes.master0.networks.eth0.networkname",
            "must be a non-empty string",
        ),
        (
            {"networks": {"eth0": {"networkname": "a", "type": "dhcp"}}},
            "nodes.master0.networks.eth0.type",
            'must be "dynamic" or "static", got "dhcp"',
        ),
        (
            {"networks": {"eth0": {"networkname": "a", "type": "static"}}},
            "nodes.master0.networks.eth0.address",
            "is required for a static network",
        ),
        (
            {"networks": {"eth0": {"networkname": "a", "type": "static", "address": "10.0.0.300"}}},
            "nodes.master0.networks.eth0.address",
            "must be an IP address",
        ),
        ({"required_node": 3}, "nodes.master0.required_node", "must be a non-empty string"),
        ({"constraints": ["a"]}, "nodes.master0.constraints", "must be an object of strings"),
        ({"constraints": {"rack": 1}}, "nodes.master0.constraints.rack", "must be a string"),
        ({"port": 0}, "nodes.master0.port", "must be a port number between 1 and 65535, got 0"),
        ({"port": 65536}, "nodes.master0.port", "must be a port number"),
        ({"port": "80.0"}, "nodes.master0.port", "must be a port number"),
        ({"check_ports": {}}, "nodes.master0.check_ports", "must be a list of port numbers"),
        ({"check_ports": [80, True]}, "nodes.master0.check_ports[1]", "must be a port number"),
        ({"docker_image": 1}, "nodes.master0.docker_image", "must be a string"),
        ({"docker_opts": None}, "nodes.master0.docker_opts", "must be a string"),
        ({"tags": 5}, "nodes.master0.tags", "must be a list of strings, got 5"),
        ({"tags": ["a", 1]}, "nodes.master0.tags[1]", "must be a string"),
        ({"services": [None]}, "nodes.master0.services[0]", "must be a string"),
    ],
)
def test_invalid_node_fields(fields: dict, path: str, fragment: str) -> None:
    with pytest.raises(SpecError) as exc:
        validate_spec(spec_with(**fields), max_nodes=5)
    assert exc.value.message.startswith(f"{path}: ")
    assert fragment in exc.value.message


@pytest.mark.parametrize(
    ("spec", "path", "fragment"),
    [
        ({"nodes": {"master0": "big"}}, "nodes.master0", 'must be an object, got "big"'),
        ({"nodes": {"master0": {"mem": 1}}}, "nodes.master0.cpu", "is required"),
        ({"nodes": {"-bad": node()}}, "nodes.-bad", "invalid node name"),
        ({"nodes": {"x" * 64: node()}}, "nodes." + "x" * 64, "invalid node name"),
        ({"nodes": {"n": node()}, "services": []}, "services", "must be an object of services"),
        ({"nodes": {"n": node()}, "services": {"s": 1}}, "services.s", "must be an object"),
        (
            {"nodes": {"n": node()}, "services": {"s": {"nodes": "n"}}},
            "services.s.nodes",
            "must be a list of strings",
        ),
        (
            {"nodes": {"n": node()}, "services": {"s": {"nodes": ["n", "m"]}}},
            "services.s.nodes[1]",
            'unknown node "m"',
        ),
    ],
)
def test_invalid_specs(spec: dict, path: str, fragment: str) -> None:
    with pytest.raises(SpecError) as exc:
        validate_spec(spec, max_nodes=5)
    assert exc.value.message.startswith(f"{path}: ")
    assert fragment in exc.value.message


#: the original system's dialect, read once, here: (node fields, the same fields as stored)
DIALECT_ACCEPTED = [
    ({"cpu": "2", "mem": "2048"}, {"cpu": 2, "mem": 2048}),
    ({"cpu": "08"}, {"cpu": 8}),
    ({"port": "22"}, {"port": 22}),
    ({"check_ports": "22,8088"}, {"check_ports": [22, 8088]}),
    ({"check_ports": "22, 8088 "}, {"check_ports": [22, 8088]}),
    ({"check_ports": "22"}, {"check_ports": [22]}),
    ({"check_ports": 22}, {"check_ports": [22]}),
    ({"check_ports": ["22", 8088]}, {"check_ports": [22, 8088]}),
    ({"check_ports": ""}, {"check_ports": []}),
    ({"tags": "master"}, {"tags": ["master"]}),
    ({"tags": "yarn,master"}, {"tags": ["yarn", "master"]}),
    ({"tags": ""}, {"tags": []}),
    ({"services": "datanode,nodemanager"}, {"services": ["datanode", "nodemanager"]}),
    ({"disks": "2"}, {"disks": {"disk0": {}, "disk1": {}}}),
    ({"use_custom_disks": "false"}, {"use_custom_disks": False}),
    ({"use_custom_disks": "True"}, {"use_custom_disks": True}),
    # placeholders for what the platform assigns: dropped, placement writes them
    ({"host": "X", "id": "X", "status": "X"}, {}),
    (
        {"disks": {"d": {"origin": "X", "destination": "/data"}}},
        {"disks": {"d": {"destination": "/data"}}},
    ),
    (
        {"networks": {"eth0": {"networkname": "demo", "type": "dynamic", "address": "X"}}},
        {"networks": {"eth0": {"networkname": "demo", "type": "dynamic"}}},
    ),
]

#: what the dialect does not make right: (node fields, the problem's path, its message)
DIALECT_REFUSED = [
    ({"cpu": "two"}, "nodes.master0.cpu", 'must be an integer >= 1, got "two"'),
    ({"cpu": "2.5"}, "nodes.master0.cpu", 'must be an integer >= 1, got "2.5"'),
    ({"cpu": " 2"}, "nodes.master0.cpu", 'must be an integer >= 1, got " 2"'),
    ({"cpu": "0"}, "nodes.master0.cpu", "must be an integer >= 1, got 0"),
    ({"mem": "-5"}, "nodes.master0.mem", "must be an integer >= 1, got -5"),
    ({"mem": "\u0662"}, "nodes.master0.mem", "must be an integer >= 1"),
    ({"mem": "9" * 19}, "nodes.master0.mem", "must be an integer >= 1"),
    ({"mem": "4294967296"}, "nodes.master0.mem", "must be at most 2147483647, got 4294967296"),
    ({"port": "X"}, "nodes.master0.port", 'must be a port number between 1 and 65535, got "X"'),
    ({"port": "70000"}, "nodes.master0.port", "between 1 and 65535, got 70000"),
    ({"check_ports": "22,abc"}, "nodes.master0.check_ports[1]", 'got "abc"'),
    ({"check_ports": "22,,80"}, "nodes.master0.check_ports[1]", 'got ""'),
    ({"check_ports": "22,8088.5"}, "nodes.master0.check_ports[1]", 'got "8088.5"'),
    ({"check_ports": 22.0}, "nodes.master0.check_ports", "must be a list of port numbers"),
    ({"check_ports": True}, "nodes.master0.check_ports", "must be a list of port numbers"),
    ({"tags": ["a", 1]}, "nodes.master0.tags[1]", "must be a string, got 1"),
    ({"disks": "two"}, "nodes.master0.disks", "must be an object of disks or a disk count"),
    ({"use_custom_disks": "no"}, "nodes.master0.use_custom_disks", 'true or false, got "no"'),
    ({"use_custom_disks": 1}, "nodes.master0.use_custom_disks", "true or false, got 1"),
]


@pytest.mark.parametrize(("fields", "stored"), DIALECT_ACCEPTED)
def test_the_dialect_is_read_as_the_types_it_means(fields: dict, stored: dict) -> None:
    out = validate_spec(spec_with(**fields), max_nodes=1)["nodes"]["master0"]
    assert out == {"cpu": 2, "mem": 1024, "disks": {}, "networks": {}, **stored}
    for field, value in stored.items():
        assert type(out[field]) is type(value)
        if isinstance(value, list):
            assert [type(item) for item in out[field]] == [type(item) for item in value]


@pytest.mark.parametrize(("fields", "path", "message"), DIALECT_REFUSED)
def test_what_the_dialect_cannot_mean_is_refused(fields: dict, path: str, message: str) -> None:
    with pytest.raises(SpecError) as exc:
        validate_spec(spec_with(**fields), max_nodes=1)
    assert exc.value.message.startswith(f"{path}: ")
    assert message in exc.value.message


def test_a_services_key_inside_nodes_stays_a_structure_error() -> None:
    spec = {"nodes": {"master0": node(), "services": {"namenode": {"nodes": ["master0"]}}}}
    with pytest.raises(SpecError) as exc:
        validate_spec(spec, max_nodes=5)
    assert exc.value.message == "nodes.services.cpu: is required; nodes.services.mem: is required"


def test_the_services_section_is_kept_as_written() -> None:
    spec = {"nodes": {"n": node()}, "services": {"s": {"nodes": ["n"], "port": "8020"}}}
    assert validate_spec(spec, max_nodes=1)["services"] == spec["services"]


def test_every_problem_is_named() -> None:
    spec = {
        "nodes": {"a": {"cpu": 0, "mem": "x"}, "b": node(port=0)},
        "services": {"s": {"nodes": ["zz"]}},
    }
    with pytest.raises(SpecError) as exc:
        validate_spec(spec, max_nodes=5)
    parts = exc.value.message.split("; ")
    assert [p.split(":")[0] for p in parts] == [
        "nodes.a.cpu",
        "nodes.a.mem",
        "nodes.b.port",
        "services.s.nodes[0]",
    ]
    assert exc.value.code == "invalid_spec" and exc.value.status == 422


def test_max_nodes_is_checked_before_the_nodes() -> None:
    spec = {"nodes": {f"n{i}": "not even a node" for i in range(1001)}}
    with pytest.raises(SpecError, match="instance has 1001 nodes; the maximum is 1000"):
        validate_spec(spec, max_nodes=1000)


def test_node_roles() -> None:
    spec = validate_spec(FULL, max_nodes=10)
    assert node_roles(spec) == {"master0": ["datanode", "namenode"], "slave0": ["datanode"]}


def test_node_roles_without_services() -> None:
    spec = validate_spec({"nodes": {"n": node(services=["b", "a", "b"])}}, max_nodes=1)
    assert node_roles(spec) == {"n": ["a", "b"]}
