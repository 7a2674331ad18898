"""Why an instance waits: the queue and the dry run name the same short dimension.

One host, two blockers running on it, then four launches that could fit the empty inventory but
not what is left, each short in another dimension: cpu, memory, disks, addresses. Each stays
``queued`` with ``waiting_for`` naming its dimension; the plan with the same options says
``fits: false`` with the same reason and shortages, and allocates nothing.
"""

from __future__ import annotations

import pytest

from tests.conftest import wait_for_status
from tests.placement.helpers import (
    API,
    NAME,
    VERSION,
    add_inventory,
    assert_no_overcommit,
    assert_nothing_allocated,
    destroy,
    get,
    inventory_snapshot,
    launch,
    register_service,
    rows,
    wait_until,
)

pytestmark = pytest.mark.integration

PLAN = f"{API}/services/{NAME}/{VERSION}/plan"
ONE = {"size": 1, "cpu": 1, "mem": 1024, "disks": 1}
#: the short dimension -> options that fit the empty host (4 cpu, 4096 MB, 4 disks, the one
#: address of network "tiny") but not what the blockers leave (2 cpu, 2048 MB, 2 disks, none)
SHORT = {
    "cpu": {**ONE, "cpu": 3},
    "mem": {**ONE, "mem": 3072},
    "disks": {**ONE, "disks": 3},
    "addresses": {**ONE, "network": "tiny"},
}


def test_a_queued_instance_and_its_plan_name_the_short_dimension(sqlite_stack, admin, env):
    app, start_worker = sqlite_stack
    db = app.extensions["paas"].db
    client = app.test_client()

    register_service(client, admin)
    # "tiny" is a /30 with its gateway: exactly one address to hand out (10.78.0.2)
    add_inventory(
        client,
        admin,
        hosts=1,
        cpu=4,
        mem=4096,
        disks=4,
        networks=(("pnet", "10.77.0.0/24", "10.77.0.1"), ("tiny", "10.78.0.0/30", "10.78.0.1")),
    )
    start_worker(env)

    blockers = [launch(client, admin, ONE), launch(client, admin, {**ONE, "network": "tiny"})]
    for blocker in blockers:
        body = wait_for_status(client, admin, blocker, {"running", "failed"}, timeout=60)
        assert body["status"] == "running", body.get("error")
    (host,) = client.get(f"{API}/hosts", headers=admin).get_json()["hosts"]
    assert host["free"] == {"cpu": 2, "mem": 2048, "disks": 2}, host
    tiny = client.get(f"{API}/networks/tiny", headers=admin).get_json()
    assert (tiny["used"], tiny["free"]) == (1, 0), tiny
    held = inventory_snapshot(db)

    waiting = {}
    for dimension, options in SHORT.items():
        instance_id = launch(client, admin, options)
        waiting[dimension] = instance_id
        body = wait_until(
            lambda i=instance_id: (b := get(client, admin, i)).get("waiting_for") and b,
            lambda i=instance_id: f"a reason on {get(client, admin, i)}",
            timeout=60,
        )
        assert body["status"] == "queued", body
        assert dimension in body["waiting_for"], (dimension, body["waiting_for"])
        assert all(node["host"] is None for node in body["nodes"]), body["nodes"]

        response = client.post(PLAN, json=options, headers=admin)
        assert response.status_code == 200, response.get_json()
        plan = response.get_json()
        assert plan["fits"] is False, plan
        assert "placement" not in plan
        assert plan["shortages"], plan
        assert {s["dimension"] for s in plan["shortages"]} == {dimension}, plan["shortages"]
        assert plan["shortages"][0]["node"] == "n0"
        # the queue and the dry run explain it the same way
        assert plan["reason"] == body["waiting_for"], (plan["reason"], body["waiting_for"])

        assert inventory_snapshot(db) == held
        assert assert_no_overcommit(db)["nodes"] == 2

    timeline = rows(
        db,
        "SELECT instance_id, message FROM events WHERE step = 'schedule' AND status = 'queued'",
    )
    for dimension, instance_id in waiting.items():
        notes = [m for i, m in timeline if i == instance_id]
        assert notes, (dimension, timeline)
        assert all(m.startswith("waiting: no fit") and dimension in m for m in notes), notes
        assert get(client, admin, instance_id)["status"] == "queued"
    assert inventory_snapshot(db) == held

    for instance_id in waiting.values():
        destroy(client, admin, instance_id)
        wait_for_status(client, admin, instance_id, {"destroyed"}, timeout=60)
    for blocker in blockers:
        destroy(client, admin, blocker)
        wait_for_status(client, admin, blocker, {"destroyed"}, timeout=60)
    assert_nothing_allocated(db)
