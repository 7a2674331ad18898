"""What a resize does, from two specs: nodes that join, nodes that leave, and what it refuses;
and where joining nodes go when the instance's own nodes are already placed."""

from __future__ import annotations

import pytest

from bigdata_paas.errors import ResizeRefused
from bigdata_paas.orquestrator.actions import declared_actions, declared_changes
from bigdata_paas.placement import HostView, NodeDemand, NoFit, place
from bigdata_paas.rendering.spec_diff import diff_specs, group_of, resize_adds


def spec(masters: int = 1, slaves: int = 2, slave_cpu: int = 2) -> dict:
    nodes = {f"master{i}": {"cpu": 4, "mem": 4096, "disks": {}} for i in range(masters)}
    for i in range(slaves):
        nodes[f"slave{i}"] = {"cpu": slave_cpu, "mem": 1024, "disks": {"d0": {}, "d1": {}}}
    services = {"datanode": {"nodes": [f"slave{i}" for i in range(slaves)], "port": 50010}}
    return {"nodes": nodes, "services": services}


def test_more_nodes_join_and_nothing_else_changes():
    diff = diff_specs(spec(slaves=2), spec(slaves=4))
    assert list(diff.added) == ["slave2", "slave3"]
    assert diff.removed == {}
    assert diff.action == "scale-out"
    assert resize_adds(diff) == {"nodes": 2, "cpu": 4, "mem": 2048, "disks": 4}


def test_fewer_nodes_drop_the_highest_numbered():
    diff = diff_specs(spec(slaves=12), spec(slaves=9))
    assert list(diff.removed) == ["slave9", "slave10", "slave11"]  # by number, not by text
    assert diff.action == "decommission"
    assert resize_adds(diff) == {"nodes": -3, "cpu": -6, "mem": -3072, "disks": -6}


def test_named_leavers_go_and_the_others_keep_their_names():
    diff = diff_specs(spec(slaves=4), spec(slaves=2), remove=["slave0", "slave2"])
    assert list(diff.removed) == ["slave0", "slave2"]
    assert sorted(diff.spec["nodes"]) == ["master0", "slave1", "slave3"]
    assert diff.spec["services"]["datanode"]["nodes"] == ["slave1", "slave3"]
    assert diff.spec["services"]["datanode"]["port"] == 50010


@pytest.mark.parametrize(
    ("old", "new", "remove", "field", "words"),
    [
        (spec(), spec(slave_cpu=3), (), "nodes.slave0.cpu", "from 2 to 3"),
        (spec(), spec(), (), "options", "nothing to resize"),
        (spec(masters=1, slaves=2), spec(masters=2, slaves=1), (), "options", "resize twice"),
        (spec(slaves=3), spec(slaves=2), ["slave7"], "remove", "slave7 is not a node"),
        (spec(slaves=3), spec(slaves=1), ["slave0"], "remove", "remove names 1"),
        (spec(slaves=3), spec(slaves=2), ["master0"], "remove", "of group 'master'"),
        (spec(slaves=3), spec(slaves=2), ["slave1", "slave1"], "remove", "named twice"),
    ],
)
def test_what_a_resize_refuses_names_the_field(old, new, remove, field, words):
    with pytest.raises(ResizeRefused) as caught:
        diff_specs(old, new, remove)
    problem = caught.value.problems[0]
    assert problem["field"] == field
    assert words in problem["message"]


def with_ports(base: dict, port: int) -> dict:
    nodes = {n: {**body, "check_ports": [port]} for n, body in base["nodes"].items()}
    return {**base, "nodes": nodes}


def test_a_staying_node_changes_only_in_what_the_service_declares():
    old, new = with_ports(spec(slaves=2), 22), with_ports(spec(slaves=3), 2222)
    with pytest.raises(ResizeRefused) as refused:
        diff_specs(old, new)
    fields = {p["field"] for p in refused.value.problems}
    assert fields == {
        "nodes.master0.check_ports",
        "nodes.slave0.check_ports",
        "nodes.slave1.check_ports",
    }
    assert "# paas-resize-changes: check_ports" in refused.value.problems[0]["message"]
    diff = diff_specs(old, new, changeable=frozenset({"check_ports"}))
    assert list(diff.added) == ["slave2"]
    assert diff.spec["nodes"]["slave0"]["check_ports"] == [2222]


def test_what_a_node_was_placed_with_never_changes_even_when_declared():
    with pytest.raises(ResizeRefused) as refused:
        diff_specs(spec(slaves=2), spec(slaves=3, slave_cpu=4), changeable=frozenset({"cpu"}))
    assert {p["field"] for p in refused.value.problems} == {"nodes.slave0.cpu", "nodes.slave1.cpu"}
    assert "cannot change it" in refused.value.problems[0]["message"]


def test_declared_changes_come_from_a_comment_near_the_top():
    script = "#!/bin/sh\n# paas-actions: scale-out\n# paas-resize-changes: check_ports, tags\n"
    assert declared_changes(script) == {"check_ports", "tags"}
    assert declared_changes("#!/bin/sh\n" + "\n" * 50 + "# paas-resize-changes: tags\n") == set()
    assert declared_changes(None) == set()


def test_groups_are_names_without_their_number():
    assert group_of("slave12") == ("slave", 12)
    assert group_of("node-03") == ("node-", 3)
    assert group_of("master") == ("master", -1)


def test_declared_actions_come_from_a_comment_near_the_top():
    assert declared_actions("# paas-actions: scale-out, decommission\nimport sys\n") == {
        "start",
        "stop",
        "scale-out",
        "decommission",
    }
    assert declared_actions("#!/bin/sh\n# paas-actions: scale-out\n") >= {"scale-out"}
    assert "decommission" not in declared_actions("#!/bin/sh\n# paas-actions: scale-out\n")
    assert declared_actions("import sys\n") == {"start", "stop"}
    late = "\n" * 60 + "# paas-actions: scale-out\n"
    assert declared_actions(late) == {"start", "stop"}
    assert declared_actions(None) == {"start", "stop"}


def hosts(n: int) -> list[HostView]:
    return [HostView(i, f"h{i}", 8, 8192, 8, 8192, []) for i in range(n)]


def test_joining_nodes_keep_away_from_the_hosts_of_their_role():
    joining = [NodeDemand(f"slave{i}", 1, 128, roles=frozenset({"datanode"})) for i in (2, 3)]
    beside = {"h0": {"datanode"}, "h1": {"datanode"}}
    placed = place(joining, hosts(4), anti_affinity="hard", beside=beside)
    assert {p.host for p in placed.nodes.values()} == {"h2", "h3"}
    with pytest.raises(NoFit):
        place(joining, hosts(3), anti_affinity="hard", beside=beside)
    # another role is no reason to keep away; without them, any host does
    other = place(joining, hosts(2), anti_affinity="hard", beside={"h0": {"namenode"}})
    assert {p.host for p in other.nodes.values()} == {"h0", "h1"}
    soft = place(joining, hosts(3), anti_affinity="soft", beside=beside)
    assert "h2" in {p.host for p in soft.nodes.values()}
