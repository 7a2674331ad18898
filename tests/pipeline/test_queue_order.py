"""The queue policy the load test relies on, step by step on the embedded stack (no worker).

Instances are placed in the order they joined the queue: a schedule step places the older
queued instances that fit before its own, so a launch whose schedule step happens to run first
never passes an older one. Under 500 concurrent launches the steps of different instances
interleave in any order; here the test calls them itself in the worst order.
"""

from __future__ import annotations

import pytest

from bench.load import NAME, VERSION, register
from bigdata_paas import states
from bigdata_paas.operations import lifecycle
from tests.conftest import ADMIN_TOKEN
from tests.placement.helpers import assert_no_overcommit, rows

pytestmark = pytest.mark.load

CAPACITY = 10


def queued_instances(client, headers, rt, count: int) -> list[str]:
    """Launch ``count`` instances and move each to ``queued``, one after the other."""
    ids = []
    for _ in range(count):
        response = client.post(
            f"/bigdata/api/v1/services/{NAME}/{VERSION}", json={}, headers=headers
        )
        assert response.status_code == 202, response.get_json()
        ids.append(response.get_json()["id"])
    for instance_id in ids:
        assert lifecycle.STEP_RUNNERS["prepare"](rt, instance_id) == states.PREPARED
        assert lifecycle.STEP_RUNNERS["submit"](rt, instance_id) == states.SUBMITTED
        assert lifecycle.STEP_RUNNERS["queue"](rt, instance_id) == states.QUEUED
    return ids


def test_a_schedule_step_places_the_older_queued_instances_first(app, client, admin):
    rt = app.extensions["paas"]
    register(client, CAPACITY, ADMIN_TOKEN)
    ids = queued_instances(client, admin, rt, CAPACITY + 2)
    order = [i for (i,) in rows(rt.db, "SELECT id FROM instances ORDER BY queued_at, id")]
    assert order == ids

    # The newest instance's schedule step runs first: the ten older ones take the capacity.
    assert lifecycle.STEP_RUNNERS["schedule"](rt, ids[-1]) == states.QUEUED
    current = dict(rows(rt.db, "SELECT id, status FROM instances"))
    assert [current[i] for i in ids] == [states.SCHEDULED] * CAPACITY + [states.QUEUED] * 2
    waiting = dict(rows(rt.db, "SELECT id, wait_reason FROM instances WHERE status = 'queued'"))
    assert set(waiting) == set(ids[-2:])
    assert waiting[ids[-1]].startswith("no fit"), waiting
    # The others' own schedule steps find them placed already; the run claims them once.
    assert lifecycle.STEP_RUNNERS["schedule"](rt, ids[0]) == "skipped"
    assert lifecycle.STEP_RUNNERS["schedule"](rt, ids[-2]) == states.QUEUED
    assert assert_no_overcommit(rt.db)["nodes"] == CAPACITY

    # Placements were committed in queue order.
    placed = [
        i
        for (i,) in rows(
            rt.db,
            "SELECT instance_id FROM events WHERE step = 'schedule' AND status = 'scheduled'"
            " ORDER BY id",
        )
    ]
    assert placed == ids[:CAPACITY]


def test_an_instance_beyond_the_pass_limit_is_still_tried_after_the_oldest(
    app, client, admin, monkeypatch
):
    rt = app.extensions["paas"]
    register(client, CAPACITY, ADMIN_TOKEN)
    ids = queued_instances(client, admin, rt, 5)
    monkeypatch.setattr(lifecycle.queueing, "QUEUE_PASS_LIMIT", 2)

    assert lifecycle.STEP_RUNNERS["schedule"](rt, ids[-1]) == states.SCHEDULED
    current = dict(rows(rt.db, "SELECT id, status FROM instances"))
    assert [current[i] for i in ids] == [states.SCHEDULED] * 2 + [states.QUEUED] * 2 + [
        states.SCHEDULED
    ]
    assert lifecycle.queueing.drain_queue(rt) == 2
    assert assert_no_overcommit(rt.db)["nodes"] == 5
