"""A hundred launch/destroy cycles on the embedded defaults leave the inventory as it was.

One real worker on SQLite and the filesystem broker; ten rounds of ten instances. In every
round half the instances are destroyed as soon as the launch is accepted (wherever they are in
the pipeline), the other half once running. A resident instance holds allocations all along, so
"as it was" is not merely "empty": releasing must free exactly what each instance held.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_for_status
from tests.placement.helpers import (
    API,
    MOVING,
    add_inventory,
    assert_no_overcommit,
    assert_nothing_allocated,
    get,
    inventory_snapshot,
    launch,
    register_service,
    rows,
    status_counts,
    statuses,
    wait_until,
)

pytestmark = pytest.mark.integration

ROUNDS, PER_ROUND = 10, 10
RESIDENT = {"size": 3, "cpu": 2, "mem": 2048, "disks": 2}


def destroy_retrying(client, headers, instance_id: str, timeout: float = 30) -> None:
    """DELETE the instance; a 409 "changed status; try again" (a step moved it between the
    API's read and its write) is retried, as a client would."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.delete(f"{API}/instances/{instance_id}", headers=headers)
        if response.status_code == 202:
            return
        body = response.get_json()
        assert response.status_code == 409, body
        assert "try again" in body["error"]["message"], body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def test_hundred_launch_destroy_cycles_leave_the_inventory_exactly_as_it_was(
    sqlite_stack, admin, env
):
    app, start_worker = sqlite_stack
    db = app.extensions["paas"].db
    assert db.is_sqlite
    client = app.test_client()

    register_service(client, admin)
    # 32 node slots: the resident takes 6 cpu and disks, a round at most 20 nodes
    add_inventory(client, admin, hosts=4, cpu=8, mem=8 * 1024, disks=8)
    start_worker(env)

    resident = launch(client, admin, RESIDENT)
    body = wait_for_status(client, admin, resident, {"running", "failed"}, timeout=60)
    assert body["status"] == "running", body.get("error")
    resident_nodes = body["nodes"]

    before = inventory_snapshot(db)
    assert sum(cpu for _, cpu, _ in before["hosts"]) == 6, before["hosts"]
    assert sum(node is not None for _, _, node in before["disks"]) == 6, before["disks"]
    assert len(before["addresses"]) == 3, before["addresses"]
    assert assert_no_overcommit(db)["nodes"] == 3

    cycled: list[str] = []
    for round_no in range(ROUNDS):
        ids = [launch(client, admin) for _ in range(PER_ROUND)]
        cycled += ids
        early, late = ids[::2], ids[1::2]
        for instance_id in early:
            destroy_retrying(client, admin, instance_id)

        def round_settled(ids=ids, early=early, late=late):
            now = statuses(db, ids)
            if any(status in MOVING or status == "queued" for status, _ in now.values()):
                return None
            if any(now[i][0] != "destroyed" for i in early):
                return None
            return now

        now = wait_until(
            round_settled,
            lambda ids=ids, n=round_no: f"round {n}: {status_counts(db, ids)}",
            timeout=90,
        )
        failures = rows(db, "SELECT id, failed_step, error FROM instances WHERE status = 'failed'")
        assert all(now[i][0] == "running" for i in late), (now, failures)
        assert assert_no_overcommit(db)["nodes"] == 3 + 2 * len(late)

        for instance_id in late:
            destroy_retrying(client, admin, instance_id)
        wait_until(
            lambda ids=ids: all(s == "destroyed" for s, _ in statuses(db, ids).values()),
            lambda ids=ids, n=round_no: f"round {n} destroyed: {status_counts(db, ids)}",
            timeout=90,
        )

    assert len(cycled) == ROUNDS * PER_ROUND
    assert status_counts(db, cycled) == {"destroyed": ROUNDS * PER_ROUND}
    after = inventory_snapshot(db)
    assert after == before
    assert assert_no_overcommit(db)["nodes"] == 3
    body = get(client, admin, resident)
    assert body["status"] == "running"
    assert body["nodes"] == resident_nodes

    response = client.delete(f"{API}/instances/{resident}", headers=admin)
    assert response.status_code == 202, response.get_json()
    wait_for_status(client, admin, resident, {"destroyed"}, timeout=60)
    assert_nothing_allocated(db)
