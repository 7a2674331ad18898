"""PATCH /instances/{id}: what a resize refuses before anything changes, the dry run, and the
resize step called as a worker calls it (no worker runs here: the real pipeline is in
tests/integration/test_resize_pipeline.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from bigdata_paas import states
from bigdata_paas.errors import Unavailable
from bigdata_paas.models import Address, Event, Host, HostDisk, Instance, Node, utcnow
from bigdata_paas.operations import resize as resize_ops
from bigdata_paas.operations.lifecycle import STEP_RUNNERS, recovery, resizing
from tests.api.support import API, add_service, error_of, launch, set_status

#: ``n`` nodes named node0.., each on the ``demo`` network, one role: one node per host
TEMPLATE = """{% set comma = joiner(",") %}
{"nodes": {
{% for i in range(opts['n']) %}{{ comma() }}
  "node{{ i }}": {"cpu": {{ opts['cpu'] }}, "mem": 128, "disks": {"d0": {"destination": "/d"}},
                  "networks": {"eth0": {"networkname": "demo", "type": "dynamic"}},
                  "services": ["worker"]}
{% endfor %}
{% set sep = joiner(",") %}
}, "services": {"worker": {"nodes": [
{% for i in range(opts['n']) %}{{ sep() }}"node{{ i }}"{% endfor %}]}},
 "anti_affinity": "hard"}
"""
OPTIONS = {
    "required": {"n": 2},
    "optional": {"cpu": 1, "fail": ""},
    "descriptions": {"n": "nodes", "cpu": "cores per node", "fail": "action that exits 1"},
}
#: records each action's files; exits 1 for the action named by the option ``fail``
ORQUESTRATOR = """# paas-actions: scale-out decommission
import json, os, sys
doc = json.load(open(os.environ["PAAS_INSTANCE_FILE"]))
if sys.argv[1] in ("scale-out", "decommission"):
    changed = json.load(open(os.environ["PAAS_CHANGED_NODES_FILE"]))
    previous = json.load(open(os.environ["PAAS_PREVIOUS_INSTANCE_FILE"]))
    print(sys.argv[1], os.environ["PAAS_CHANGED_NODES"], [n["name"] for n in changed],
          len(previous["nodes"]), "->", len(doc["nodes"]))
sys.exit(1 if doc["options"]["fail"] == sys.argv[1] else 0)
"""


@pytest.fixture
def stack(app, client, admin):
    add_service(
        client, admin, "grid", "1", template=TEMPLATE, options=OPTIONS, orquestrator=ORQUESTRATOR
    )
    add_inventory(client, admin)
    return app


def add_inventory(client, admin) -> None:
    """The ``demo`` network and four hosts of 4 cores on it."""
    net = {"name": "demo", "cidr": "10.77.0.0/24"}
    assert client.post(f"{API}/networks", json=net, headers=admin).status_code == 201
    for i in range(4):
        host = {
            "name": f"h{i}",
            "address": f"127.0.0.{i + 1}",
            "cpu": 4,
            "mem": 4096,
            "disks": [{"name": "sdb", "type": "hdd", "size": 100}],
            "networks": ["demo"],
        }
        assert client.post(f"{API}/hosts", json=host, headers=admin).status_code == 201


def running(app, client, headers, **options) -> str:
    """An instance of grid/1 brought to running by the real steps, called in-process."""
    instance_id = launch(client, headers, "grid", "1", options)["id"]
    rt = app.extensions["paas"]
    for step in states.LAUNCH_STEPS:
        STEP_RUNNERS[step](rt, instance_id)
    assert detail(client, headers, instance_id)["status"] == states.RUNNING
    return instance_id


def detail(client, headers, instance_id: str) -> dict:
    return client.get(f"{API}/instances/{instance_id}", headers=headers).get_json()


def patch(client, headers, instance_id: str, body: dict, dry_run: bool = False):
    query = "?dry_run=true" if dry_run else ""
    return client.patch(f"{API}/instances/{instance_id}{query}", json=body, headers=headers)


def snapshot(app, instance_id: str) -> dict:
    """Every row a resize could touch: the instance, its nodes, allocations, hosts."""
    with app.extensions["paas"].db.session() as session:
        instance = session.get(Instance, instance_id)
        return {
            "instance": (
                instance.status,
                instance.options,
                instance.merged_options,
                instance.spec,
                instance.resize,
                (instance.held_nodes, instance.held_cpu, instance.held_mem, instance.held_disks),
            ),
            "nodes": sorted(
                (n.name, n.host_id, n.cpu, n.mem, n.placement)
                for n in session.scalars(select(Node).where(Node.instance_id == instance_id))
            ),
            "hosts": sorted(session.execute(select(Host.name, Host.cpu_used, Host.mem_used))),
            "disks": sorted(session.execute(select(HostDisk.id, HostDisk.node_id))),
            "addresses": sorted(session.execute(select(Address.address, Address.node_id))),
        }


def resize_events(app, instance_id: str) -> list[str]:
    with app.extensions["paas"].db.session() as session:
        return list(
            session.scalars(
                select(Event.message)
                .where(Event.instance_id == instance_id, Event.step == "resize")
                .order_by(Event.id)
            )
        )


def test_scale_out_then_in_by_the_step(stack, client, admin):
    app, rt = stack, stack.extensions["paas"]
    instance_id = running(app, client, admin)
    answer = patch(client, admin, instance_id, {"options": {"n": 3}})
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["status"] == states.UPDATING
    assert answer.get_json()["resize"] == {
        "action": "scale-out",
        "added": ["node2"],
        "removed": [],
        "options": {"n": 3},
    }
    assert [n["name"] for n in answer.get_json()["nodes"]] == ["node0", "node1", "node2"]
    body = detail(client, admin, instance_id)
    assert [n["name"] for n in body["nodes"]] == ["node0", "node1", "node2"]
    hosts = {n["name"]: n["host"] for n in body["nodes"]}
    # hard anti-affinity counts the nodes already there: the new one lands on a free host
    assert len(set(hosts.values())) == 3
    assert resizing.resize(rt, instance_id) == states.RUNNING
    body = detail(client, admin, instance_id)
    assert body["status"] == states.RUNNING
    assert body["options"] == {"n": 3}
    assert body["services"]["worker"]["nodes"] == ["node0", "node1", "node2"]
    events = resize_events(app, instance_id)
    assert f"node node2 joins on host {hosts['node2']}" in events
    assert events[-1].startswith("resized: added node2")

    # scale in, naming the node that leaves: node0 goes, node1 and node2 stay as they are
    answer = patch(client, admin, instance_id, {"options": {"n": 2}, "remove": ["node0"]})
    assert answer.status_code == 202, answer.get_json()
    assert resizing.resize(rt, instance_id) == states.RUNNING
    body = detail(client, admin, instance_id)
    assert {n["name"]: n["host"] for n in body["nodes"]} == {
        "node1": hosts["node1"],
        "node2": hosts["node2"],
    }
    assert body["services"]["worker"]["nodes"] == ["node1", "node2"]
    events = resize_events(app, instance_id)
    assert f"node node0 removed ({hosts['node0']})" in events
    with rt.db.session() as session:
        used = dict(session.execute(select(Host.name, Host.cpu_used)).all())
        taken = session.scalar(select(HostDisk.id).where(HostDisk.node_id.is_not(None)).limit(9))
    assert used[hosts["node0"]] == 0 and used[hosts["node1"]] == 1
    assert taken is not None
    logs = client.get(f"{API}/instances/{instance_id}/logs", headers=admin).get_json()["lines"]
    said = [line["line"] for line in logs]
    assert "scale-out node2 ['node2'] 2 -> 3" in said
    assert "decommission node0 ['node0'] 3 -> 2" in said


def test_a_declared_field_of_the_staying_nodes_changes_with_the_resize(app, client, admin):
    """The orquestrator says its resize actions reconfigure ``tags``: a resize may change
    them on the staying nodes too, and they are the nodes' own once it is done."""
    tagged = TEMPLATE.replace(
        '"services": ["worker"]', '"services": ["worker"], "tags": ["{{ opts[\'tag\'] }}"]'
    )
    options = {**OPTIONS, "optional": {**OPTIONS["optional"], "tag": "old"}}
    options["descriptions"] = {**OPTIONS["descriptions"], "tag": "every node's tag"}
    script = ORQUESTRATOR.replace("# paas-actions:", "# paas-resize-changes: tags\n# paas-actions:")
    add_service(client, admin, "tagged", "1", template=tagged, options=options, orquestrator=script)
    add_inventory(client, admin)
    rt = app.extensions["paas"]
    instance_id = launch(client, admin, "tagged", "1", {})["id"]
    for step in states.LAUNCH_STEPS:
        STEP_RUNNERS[step](rt, instance_id)
    answer = patch(client, admin, instance_id, {"options": {"n": 3, "tag": "new"}})
    assert answer.status_code == 202, answer.get_json()
    assert resizing.resize(rt, instance_id) == states.RUNNING
    with rt.db.session() as session:
        tags = dict(
            session.execute(
                select(Node.name, Node.spec).where(Node.instance_id == instance_id)
            ).all()
        )
    assert {name: spec["tags"] for name, spec in tags.items()} == {
        "node0": ["new"],
        "node1": ["new"],
        "node2": ["new"],
    }
    assert detail(client, admin, instance_id)["status"] == states.RUNNING


def test_a_failed_scale_out_leaves_the_instance_as_it_was(stack, client, admin):
    app, rt = stack, stack.extensions["paas"]
    instance_id = running(app, client, admin, fail="scale-out")
    before = snapshot(app, instance_id)
    assert patch(client, admin, instance_id, {"options": {"n": 4}}).status_code == 202
    assert snapshot(app, instance_id) != before
    assert resizing.resize(rt, instance_id) == states.RUNNING
    assert snapshot(app, instance_id) == before
    assert (
        "scale-out failed: orquestrator scale-out exited with 1"
        in (resize_events(app, instance_id)[-1])
    )


def test_a_failed_decommission_removes_nothing(stack, client, admin):
    app, rt = stack, stack.extensions["paas"]
    instance_id = running(app, client, admin, n=3, fail="decommission")
    before = snapshot(app, instance_id)
    assert patch(client, admin, instance_id, {"options": {"n": 1}}).status_code == 202
    assert resizing.resize(rt, instance_id) == states.RUNNING
    assert snapshot(app, instance_id) == before
    assert "decommission failed" in resize_events(app, instance_id)[-1]


def test_no_capacity_is_a_409_at_once_and_changes_nothing(stack, client, admin):
    app = stack
    instance_id = running(app, client, admin, n=3)
    before = snapshot(app, instance_id)
    # hard anti-affinity: 4 hosts hold at most 4 nodes of the role
    answer = patch(client, admin, instance_id, {"options": {"n": 6}})
    assert answer.status_code == 409
    error = error_of(answer)
    assert error["code"] == "no_capacity"
    assert "nothing changed" in error["message"]
    assert error["details"]["shortages"]
    assert snapshot(app, instance_id) == before
    plan = patch(client, admin, instance_id, {"options": {"n": 6}}, dry_run=True).get_json()
    assert plan["fits"] is False and plan["shortages"]


def held(app, instance_id: str) -> tuple[int, int]:
    with app.extensions["paas"].db.session() as session:
        instance = session.get(Instance, instance_id)
        return instance.held_nodes, instance.held_cpu


def test_a_resize_over_quota_is_a_403_and_changes_nothing(stack, client, admin, make_user):
    """Only what a resize adds is weighed against the owner's quota; giving nodes back is
    never refused, and what the instance holds follows its spec."""
    app, rt = stack, stack.extensions["paas"]
    alice = make_user("alice")
    instance_id = running(app, client, alice, n=2, cpu=2)
    quota = {"nodes": 3, "cpu": 8}
    assert client.put(f"{API}/users/alice/quota", json=quota, headers=admin).status_code == 200
    before = snapshot(app, instance_id)
    answer = patch(client, alice, instance_id, {"options": {"n": 4}})
    assert answer.status_code == 403, answer.get_json()
    error = error_of(answer)
    assert error["code"] == "quota_exceeded"
    assert {
        e["resource"]: (e["requested"], e["used"], e["limit"]) for e in error["details"]["exceeded"]
    } == {"nodes": (2, 2, 3)}
    assert snapshot(app, instance_id) == before
    plan = patch(client, alice, instance_id, {"options": {"n": 4}}, dry_run=True).get_json()
    assert plan["quota"]["allowed"] is False
    assert [e["resource"] for e in plan["quota"]["exceeded"]] == ["nodes"]
    # within the quota: one more node, held from the moment it is placed
    assert patch(client, alice, instance_id, {"options": {"n": 3}}).status_code == 202
    assert held(app, instance_id) == (3, 6)
    assert resizing.resize(rt, instance_id) == states.RUNNING
    assert held(app, instance_id) == (3, 6)
    # at the limit, scaling in is still allowed, and gives back
    assert patch(client, alice, instance_id, {"options": {"n": 1}}).status_code == 202
    assert resizing.resize(rt, instance_id) == states.RUNNING
    assert held(app, instance_id) == (1, 2)


def test_a_rolled_back_scale_out_gives_back_what_it_held(stack, client, admin):
    app, rt = stack, stack.extensions["paas"]
    instance_id = running(app, client, admin, fail="scale-out")
    assert held(app, instance_id) == (2, 2)
    assert patch(client, admin, instance_id, {"options": {"n": 4}}).status_code == 202
    assert held(app, instance_id) == (4, 4)
    assert resizing.resize(rt, instance_id) == states.RUNNING
    assert held(app, instance_id) == (2, 2)


def test_the_dry_run_says_what_and_where_and_changes_nothing(stack, client, admin):
    app = stack
    instance_id = running(app, client, admin)
    before = snapshot(app, instance_id)
    answer = patch(client, admin, instance_id, {"options": {"n": 4}}, dry_run=True)
    assert answer.status_code == 200, answer.get_json()
    plan = answer.get_json()
    assert plan["action"] == "scale-out"
    assert plan["added"] == ["node2", "node3"] and plan["removed"] == []
    assert plan["adds"] == {"nodes": 2, "cpu": 2, "mem": 256, "disks": 2}
    assert plan["fits"] is True
    taken = {n["host"] for n in detail(client, admin, instance_id)["nodes"]}
    assert {p["host"] for p in plan["placement"]}.isdisjoint(taken)
    down = patch(client, admin, instance_id, {"options": {"n": 1}}, dry_run=True).get_json()
    assert down["action"] == "decommission" and down["removed"] == ["node1"]
    assert down["adds"]["nodes"] == -1
    assert snapshot(app, instance_id) == before


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"options": {"cpu": 2}}, "nodes.node0.cpu", "node node0 stays but its cpu"),
        ({"options": {"n": 2}}, "options", "nothing to resize"),
        ({"options": {"n": 1}, "remove": ["node7"]}, "remove", "node7 is not a node"),
        ({"options": {"n": 1}, "remove": []}, None, None),
        ({"options": {"n": 1}, "remove": ["node0", "node1"]}, "remove", "remove names 2"),
    ],
)
def test_a_resize_the_platform_cannot_do_is_a_422(stack, client, admin, body, field, words):
    app = stack
    instance_id = running(app, client, admin)
    before = snapshot(app, instance_id)
    answer = patch(client, admin, instance_id, body, dry_run=True)
    if field is None:
        assert answer.status_code == 200
        return
    assert answer.status_code in (400, 422), answer.get_json()
    assert snapshot(app, instance_id) == before
    if answer.status_code == 422:
        problems = error_of(answer)["details"]["problems"]
        assert problems[0]["field"] == field
        assert words in problems[0]["message"]
        assert patch(client, admin, instance_id, body).status_code == 422
        assert snapshot(app, instance_id) == before


def test_bad_options_are_a_400_naming_them(stack, client, admin):
    instance_id = running(stack, client, admin)
    answer = patch(client, admin, instance_id, {"options": {"n": "many"}})
    assert answer.status_code == 400
    assert "n" in error_of(answer)["message"]
    assert patch(client, admin, instance_id, {"opts": {}}).status_code == 400


def test_only_a_running_instance_resizes_and_one_resize_at_a_time(stack, client, admin):
    app = stack
    instance_id = running(app, client, admin)
    assert patch(client, admin, instance_id, {"options": {"n": 3}}).status_code == 202
    again = patch(client, admin, instance_id, {"options": {"n": 4}})
    assert again.status_code == 409
    assert "is updating" in error_of(again)["message"]
    set_status(app, instance_id, states.FAILED)
    assert patch(client, admin, instance_id, {"options": {"n": 4}}).status_code == 409
    queued = launch(client, admin, "grid", "1", {})["id"]
    answer = patch(client, admin, queued, {"options": {"n": 3}})
    assert answer.status_code == 409
    assert "only a running instance" in error_of(answer)["message"]
    # the destroy of an updating instance waits for the resize to end
    set_status(app, instance_id, states.UPDATING)
    assert client.delete(f"{API}/instances/{instance_id}", headers=admin).status_code == 409


def test_an_orquestrator_without_the_action_is_refused_before_anything(stack, client, admin):
    app = stack
    instance_id = running(app, client, admin)
    response = client.put(
        f"{API}/services/grid/1/orquestrator",
        data="import sys\n",
        content_type="application/json",
        headers=admin,
    )
    assert response.status_code == 200
    before = snapshot(app, instance_id)
    answer = patch(client, admin, instance_id, {"options": {"n": 3}})
    assert answer.status_code == 422
    problem = error_of(answer)["details"]["problems"][0]
    assert problem["field"] == "orquestrator"
    assert "does not declare the scale-out action" in problem["message"]
    assert snapshot(app, instance_id) == before


def test_another_users_instance_is_a_404(stack, client, admin, make_user):
    instance_id = running(stack, client, admin)
    other = make_user()
    assert patch(client, other, instance_id, {"options": {"n": 3}}).status_code == 404
    owner = make_user()
    own = running(stack, client, owner)
    assert patch(client, owner, own, {"options": {"n": 3}}, dry_run=True).status_code == 200


def test_a_broker_that_refuses_the_resize_leaves_nothing(stack, client, admin, monkeypatch):
    app = stack
    instance_id = running(app, client, admin)
    before = snapshot(app, instance_id)

    def refuse(*_args, **_kwargs):
        raise Unavailable("broker down (injected)")

    monkeypatch.setattr(resize_ops, "publish_resize", refuse)
    unchecked = FlaskClient(app, app.response_class)  # a 503 is the answer here
    answer = patch(unchecked, admin, instance_id, {"options": {"n": 3}})
    assert answer.status_code == 503
    assert error_of(answer)["code"] == "unavailable"
    assert snapshot(app, instance_id) == before
    assert "broker unreachable" in resize_events(app, instance_id)[-1]


def test_a_lost_resize_message_is_published_again_by_the_sweep(stack, client, admin, monkeypatch):
    app, rt = stack, stack.extensions["paas"]
    instance_id = running(app, client, admin)
    sent: list[str] = []
    monkeypatch.setattr(resize_ops, "publish_resize", lambda _celery, i: None)  # lost
    assert patch(client, admin, instance_id, {"options": {"n": 3}}).status_code == 202
    with rt.db.session() as session:  # no progress for longer than STALE_AFTER
        session.execute(
            update(Instance)
            .where(Instance.id == instance_id)
            .values(updated_at=utcnow() - timedelta(seconds=rt.config.STALE_AFTER + 1))
        )
        session.commit()
    monkeypatch.setattr(recovery, "publish_resize", lambda _celery, i: sent.append(i))
    assert recovery.sweep(rt)["republished"] == 1
    assert sent == [instance_id]
    # the step it published: the resize had not begun, so it is done now
    assert resizing.resize(rt, instance_id) == states.RUNNING
    body = detail(client, admin, instance_id)
    assert [n["name"] for n in body["nodes"]] == ["node0", "node1", "node2"]
    assert body["options"] == {"n": 3}
