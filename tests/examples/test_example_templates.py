"""Every example service renders through the platform's own rendering, in every documented way."""

from __future__ import annotations

import ast
import json
import sys

import pytest

from bigdata_paas.rendering import validate_options_document
from tests.examples.helpers import EXAMPLES, SERVICE_IDS, SERVICES, folder, render

MARK_BEGIN = "# ==== node servers"
MARK_END = "# ==== end of node servers ===="


def test_every_example_folder_is_covered() -> None:
    found = sorted(str(p.parent.relative_to(EXAMPLES)) for p in EXAMPLES.glob("*/*/service.json"))
    assert found == sorted(f"{name}/{version}" for name, version, _launch in SERVICES)


@pytest.mark.parametrize(("name", "version", "launch"), SERVICES, ids=SERVICE_IDS)
def test_service_json_names_the_folder(name: str, version: str, launch: dict) -> None:
    service = json.loads((folder(name, version) / "service.json").read_text())
    assert (service["name"], service["version"]) == (name, version)
    assert service["description"]


@pytest.mark.parametrize(("name", "version", "launch"), SERVICES, ids=SERVICE_IDS)
def test_options_document_is_valid_and_described(name: str, version: str, launch: dict) -> None:
    raw = json.loads((folder(name, version) / "options.json").read_text())
    doc = validate_options_document(raw)
    names = {key for part in ("required", "optional", "advanced") for key in doc[part]}
    assert set(raw["descriptions"]) == names
    assert set(raw["limits"]) <= names
    assert doc["advanced"]["network"] == "demo"


@pytest.mark.parametrize("values", ["defaults", "launch"])
@pytest.mark.parametrize(("name", "version", "launch"), SERVICES, ids=SERVICE_IDS)
def test_renders_to_a_valid_spec(name: str, version: str, launch: dict, values: str) -> None:
    merged, spec = render(name, version, {} if values == "defaults" else launch)
    assert spec["nodes"], spec
    for node_name, node in spec["nodes"].items():
        # Each node gets its own address from the demo pool, so ports never collide.
        assert node["networks"] == {"eth0": {"networkname": "demo", "type": "dynamic"}}, node_name
        assert node["check_ports"], node_name
        assert len(set(node["check_ports"])) == len(node["check_ports"])
        assert all(1024 <= port <= 65535 for port in node["check_ports"]), node_name
        assert node["port"] == node["check_ports"][0]
        assert node["services"], node_name
    for service, body in spec["services"].items():
        assert body["nodes"], service
        assert set(body["nodes"]) <= set(spec["nodes"]), service
    assert merged  # the orquestrators read the merged options too


def test_gluster_layout() -> None:
    _merged, spec = render("gluster", "3.7.11", {"size": 3, "disks": 4, "disk.type": "ssd"})
    assert sorted(spec["nodes"]) == ["gluster0", "gluster1", "gluster2"]
    node = spec["nodes"]["gluster1"]
    assert node["check_ports"] == [24007, 49152, 49153, 49154, 49155]  # glusterd, one per brick
    assert [d["destination"] for d in node["disks"].values()] == [f"/data/{i}" for i in range(4)]
    assert {d["type"] for d in node["disks"].values()} == {"ssd"}
    assert spec["services"]["glusterd"] == {
        "nodes": ["gluster0", "gluster1", "gluster2"],
        "volume_replica": 2,
    }


def test_cdh_layout() -> None:
    _merged, spec = render("cdh", "5.7.2", {"slaves.number": 3, "slaves.disks": 3})
    assert sorted(spec["nodes"]) == ["master0", "slave0", "slave1", "slave2"]
    assert spec["nodes"]["master0"]["check_ports"] == [8020, 8032]
    assert spec["nodes"]["master0"]["disks"] == {}
    assert spec["nodes"]["slave2"]["check_ports"] == [50010, 8040]
    assert len(spec["nodes"]["slave2"]["disks"]) == 3
    assert spec["services"]["namenode"] == {"nodes": ["master0"], "port": 8020}
    assert spec["services"]["datanode"]["nodes"] == ["slave0", "slave1", "slave2"]
    assert spec["services"]["datanode"]["heap"] == 1024


@pytest.mark.parametrize(("nodes", "seeds", "expected"), [(3, 2, 2), (1, 2, 1), (5, 3, 3)])
def test_cassandra_seeds_are_the_first_nodes(nodes: int, seeds: int, expected: int) -> None:
    _merged, spec = render("cassandra", "3.11", {"nodes": nodes, "seeds": seeds})
    ring = spec["services"]["cassandra"]
    assert ring["nodes"] == [f"cassandra{i}" for i in range(nodes)]
    assert ring["seeds"] == [f"cassandra{i}" for i in range(expected)]
    assert ring["cluster_name"] == "demo"
    tagged = [n for n, body in spec["nodes"].items() if body["tags"] == ["seed"]]
    assert tagged == ring["seeds"]
    assert spec["nodes"]["cassandra0"]["check_ports"] == [9042, 7000]


@pytest.mark.parametrize(("name", "version", "launch"), SERVICES, ids=SERVICE_IDS)
def test_renders_at_the_limits(name: str, version: str, launch: dict) -> None:
    """The largest instance the options allow is still one the platform accepts."""
    limits = json.loads((folder(name, version) / "options.json").read_text())["limits"]
    for edge in ("min", "max"):
        values = {k: v[edge] for k, v in limits.items() if edge in v}
        _merged, spec = render(name, version, values)
        assert 1 <= len(spec["nodes"]) <= 200


def test_the_node_server_code_is_the_same_in_every_orquestrator() -> None:
    blocks = {}
    for name, version, _launch in SERVICES:
        text = (folder(name, version) / "orquestrator.py").read_text()
        assert text.count(MARK_BEGIN) == 1 and text.count(MARK_END) == 1, name
        blocks[name] = text[text.index(MARK_BEGIN) : text.index(MARK_END)]
    assert len(set(blocks.values())) == 1, "edit the node servers block in all three"


@pytest.mark.parametrize(("name", "version", "launch"), SERVICES, ids=SERVICE_IDS)
def test_orquestrator_uses_only_the_standard_library(name: str, version: str, launch: dict):
    tree = ast.parse((folder(name, version) / "orquestrator.py").read_text())
    modules = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert modules <= set(sys.stdlib_module_names), modules - set(sys.stdlib_module_names)
