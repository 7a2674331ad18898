"""Placement under concurrency on the production stack: PostgreSQL, RabbitMQ, two workers.

Fifty launches race for an inventory that holds exactly twenty instances. Two separate worker
processes consume the pipeline queue (one of them also the orquestrator queue), so schedule
steps of different processes place at the same time. Everything is checked from the database.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.placement.helpers import (
    API,
    MOVING,
    NAME,
    VERSION,
    add_inventory,
    assert_no_overcommit,
    assert_nothing_allocated,
    destroy,
    get,
    in_threads,
    launch,
    queue_order,
    register_service,
    rows,
    scheduling_order,
    status_counts,
    statuses,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.services]

HOSTS = 10
LAUNCHES = 50
#: each host holds exactly two instances: 4 nodes of 1 cpu, 1024 MB and 1 disk; 4 cpu,
#: 4096 MB and 4 disks per host. Every dimension runs out at the same node, and nodes are
#: interchangeable, so no placement order can fit more or fewer than 20 instances.
FIT = 20
NODE_MEM = 1024


def settled(db, ids, *, destroyed=()):
    """The statuses once nothing moves: no instance on its way, every queued one with a
    reason, and the ``destroyed`` ones destroyed; else None."""
    current = statuses(db, ids)
    if any(s in MOVING or (s == "queued" and not reason) for s, reason in current.values()):
        return None
    if any(current[i][0] != "destroyed" for i in destroyed):
        return None
    return current


def test_fifty_launches_race_for_twenty_slots_then_the_queue_drains_in_order(
    pg_stack, admin, services_env
):
    app, start_worker = pg_stack
    db = app.extensions["paas"].db
    assert db.engine.dialect.name == "postgresql"
    client = app.test_client()

    register_service(client, admin)
    add_inventory(client, admin, hosts=HOSTS, cpu=4, mem=4 * NODE_MEM, disks=4)
    plan = client.post(f"{API}/services/{NAME}/{VERSION}/plan", json={}, headers=admin)
    assert plan.status_code == 200, plan.get_json()
    assert plan.get_json()["fits"] is True, plan.get_json()
    assert plan.get_json()["nodes"] == 2

    # Two worker processes on the pipeline queue; the orquestrator queue on the first only.
    workers = [
        start_worker(services_env, queues=("pipeline", "orquestrator")),
        start_worker(services_env, queues=("pipeline",)),
    ]

    # -- 50 launches race for 20 slots ----------------------------------------------------------
    ids = in_threads(app, LAUNCHES, lambda c, _i: launch(c, admin))
    assert len(set(ids)) == LAUNCHES

    current = wait_until(
        lambda: settled(db, ids), lambda: f"50 settled launches: {status_counts(db, ids)}"
    )
    counts = Counter(status for status, _ in current.values())
    assert counts == {"running": FIT, "queued": LAUNCHES - FIT}, counts
    totals = assert_no_overcommit(db)
    assert totals == {
        "nodes": 2 * FIT,
        "cpu": 2 * FIT,
        "mem": 2 * FIT * NODE_MEM,
        "disks": 2 * FIT,
        "addresses": 2 * FIT,
    }, totals
    # The hosts are full in every dimension: nothing free anywhere.
    full = rows(db, "SELECT COUNT(*) FROM hosts WHERE cpu_used <> cpu OR mem_used <> mem")
    assert full == [(0,)]
    assert rows(db, "SELECT COUNT(*) FROM host_disks WHERE node_id IS NULL") == [(0,)]

    first_running = [i for i in ids if current[i][0] == "running"]
    waiting = queue_order(db, ids)
    assert len(waiting) == LAUNCHES - FIT
    for instance_id in waiting:
        body = get(client, admin, instance_id)
        assert body["status"] == "queued", body
        assert "cpu" in body["waiting_for"], body["waiting_for"]
        assert all(node["host"] is None for node in body["nodes"]), body["nodes"]
    for instance_id in first_running:
        body = get(client, admin, instance_id)
        assert "waiting_for" not in body
        assert all(node["host"] and node["address"] for node in body["nodes"]), body["nodes"]

    # Both processes really worked the pipeline queue.
    for worker in workers:
        assert "pipeline.schedule" in worker.output(), worker.output()[-2000:]

    # -- destroying the 20 drains the queue in submission order --------------------------------
    in_threads(app, FIT, lambda c, i: destroy(c, admin, first_running[i]))
    current = wait_until(
        lambda: (
            (now := settled(db, ids, destroyed=first_running))
            and sum(s == "running" for s, _ in now.values()) >= FIT
            and now
        ),
        lambda: f"the queue to drain: {status_counts(db, ids)}",
    )
    counts = Counter(status for status, _ in current.values())
    assert counts == {"destroyed": FIT, "running": FIT, "queued": LAUNCHES - 2 * FIT}, counts

    placed = scheduling_order(db, waiting)
    order = [waiting.index(i) for i, _ in placed]
    assert order == list(range(FIT)), f"queued instances placed in the order {order}"
    times = [at for _, at in placed]
    assert times == sorted(times), times
    assert queue_order(db, ids) == waiting[FIT:]
    second_running = [i for i in ids if current[i][0] == "running"]
    assert sorted(second_running) == sorted(waiting[:FIT])
    totals = assert_no_overcommit(db)
    assert (totals["nodes"], totals["cpu"], totals["disks"], totals["addresses"]) == (
        2 * FIT,
        2 * FIT,
        2 * FIT,
        2 * FIT,
    ), totals

    # -- destroy everything: the inventory is back to zero allocated ---------------------------
    still_queued = waiting[FIT:]
    for instance_id in still_queued:
        destroy(client, admin, instance_id)
    wait_until(
        lambda: settled(db, ids, destroyed=still_queued),
        lambda: f"the queued ones destroyed: {status_counts(db, ids)}",
    )
    assert status_counts(db, second_running) == {"running": FIT}
    in_threads(app, FIT, lambda c, i: destroy(c, admin, second_running[i]))
    wait_until(
        lambda: settled(db, ids, destroyed=ids),
        lambda: f"every instance destroyed: {status_counts(db, ids)}",
    )
    assert status_counts(db, ids) == {"destroyed": LAUNCHES}
    assert_nothing_allocated(db)
    assert assert_no_overcommit(db) == {
        "nodes": 0,
        "cpu": 0,
        "mem": 0,
        "disks": 0,
        "addresses": 0,
    }
