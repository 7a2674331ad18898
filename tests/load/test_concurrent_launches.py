"""500 concurrent launches through a real gunicorn against capacity for 100.

The production stack: PostgreSQL, RabbitMQ, gunicorn with gthread workers as the Procfile
starts it, and two Celery workers on both queues. 500 threads released together by a barrier
each POST one launch of a 1-node service; the hosts hold exactly 100 such nodes in every
dimension (cpu, memory, disks; the address pool is larger). Every launch must be accepted,
exactly 100 instances run, 400 wait queued, and no host holds more than it has. Destroying the
running instances, wave after wave, places the queued ones in submission order, until every
instance is destroyed and the inventory is exactly as it started. Everything is checked from
the database. The launch figures (accepted/s, latency percentiles) are printed first, so they
show with ``-s`` and in the captured output of a failure.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from bench.load import (
    NAME,
    NODE_MEM,
    VERSION,
    burst,
    call,
    free_port,
    in_pool,
    register,
    start_web,
    stop_group,
)
from tests.conftest import ADMIN_TOKEN, Worker, make_app
from tests.placement.helpers import (
    assert_no_overcommit,
    assert_nothing_allocated,
    inventory_snapshot,
    queue_order,
    rows,
    scheduling_order,
    status_counts,
    statuses,
    wait_until,
)

pytestmark = [pytest.mark.load, pytest.mark.integration, pytest.mark.services]

LAUNCHES = 500
CAPACITY = 100
#: statuses an instance passes through on its way to a resting one
MOVING = ("pending", "prepared", "submitted", "scheduled", "destroying")


@pytest.fixture
def stack(services_env, tmp_path):
    """The app (for the database), gunicorn on a free port and two workers on both queues;
    yields (app, port, workers, the web log)."""
    app = make_app(services_env)
    web, workers = None, []
    try:
        register(app.test_client(), CAPACITY, ADMIN_TOKEN)
        port = free_port()
        web = start_web(services_env, port, tmp_path / "web.log")
        for i in range(2):
            workers.append(Worker(services_env, tmp_path / f"worker{i}.log"))
            workers[-1].start()
        yield app, port, workers, tmp_path / "web.log"
    finally:
        for worker in workers:
            worker.stop()
        if web is not None:
            stop_group(web)
        app.extensions["celery"].close()
        app.extensions["paas"].db.dispose()


def submission_order(db, ids) -> list[str]:
    """Every instance among ``ids`` in the order it joined the queue."""
    wanted = set(ids)
    found = rows(db, "SELECT id FROM instances WHERE queued_at IS NOT NULL ORDER BY queued_at, id")
    return [i for (i,) in found if i in wanted]


def settled(db, ids, expected: Counter):
    """The statuses once nothing moves and the counts are ``expected``; else None. A failed
    instance fails the test at once, with its reason."""
    current = statuses(db, ids)
    failed = [i for i, (status, _) in current.items() if status == "failed"]
    if failed:
        errors = rows(db, "SELECT id, failed_step, error FROM instances WHERE status = 'failed'")
        raise AssertionError(f"{len(failed)} instance(s) failed, e.g. {errors[:3]}")
    if any(s in MOVING or (s == "queued" and not reason) for s, reason in current.values()):
        return None
    counts = Counter(s for s, _ in current.values())
    return current if counts == expected else None


def describe(label: str, figures: dict[str, float], total: int) -> str:
    return (
        f"{label}: {figures['ok']}/{total} accepted, {figures['per_s']:.1f} accepted/s, latency"
        f" p50 {figures['p50_ms']:.0f} ms, p95 {figures['p95_ms']:.0f} ms,"
        f" p99 {figures['p99_ms']:.0f} ms, max {figures['max_ms']:.0f} ms"
    )


def test_500_concurrent_launches_fill_capacity_for_100_then_drain_in_order(stack):
    app, port, workers, web_log = stack
    db = app.extensions["paas"].db
    assert db.engine.dialect.name == "postgresql"
    started = time.monotonic()
    before = inventory_snapshot(db)
    assert len(before["hosts"]) == CAPACITY // 10

    # -- 500 launches released together ---------------------------------------------------------
    launches = burst(
        LAUNCHES, lambda _i: call(port, "POST", f"/services/{NAME}/{VERSION}", {}, ADMIN_TOKEN)
    )
    print("\n" + describe(f"{LAUNCHES} concurrent launches", launches.figures(202), LAUNCHES))
    problems = [(r.status, r.error or r.body) for r in launches.replies if r.status != 202]
    assert problems == [], f"{len(problems)} launches not accepted, e.g. {problems[:5]}"
    ids = [r.body["id"] for r in launches.replies]
    assert len(set(ids)) == LAUNCHES

    expected = Counter(running=CAPACITY, queued=LAUNCHES - CAPACITY)
    began = time.monotonic()
    current = wait_until(
        lambda: settled(db, ids, expected),
        lambda: f"{dict(expected)}: {dict(status_counts(db, ids))}",
        timeout=300,
        interval=0.5,
    )
    print(f"settled in {time.monotonic() - began:.1f} s: {dict(status_counts(db, ids))}")
    totals = assert_no_overcommit(db)
    assert totals == {
        "nodes": CAPACITY,
        "cpu": CAPACITY,
        "mem": CAPACITY * NODE_MEM,
        "disks": CAPACITY,
        "addresses": CAPACITY,
    }, totals
    assert rows(db, "SELECT COUNT(*) FROM hosts WHERE cpu_used <> cpu OR mem_used <> mem") == [(0,)]
    assert rows(db, "SELECT COUNT(*) FROM host_disks WHERE node_id IS NULL") == [(0,)]
    # Submission order: no instance was placed while an older queued one that fit waited.
    joined = submission_order(db, ids)
    assert len(joined) == LAUNCHES
    assert [current[i][0] for i in joined] == ["running"] * CAPACITY + ["queued"] * (
        LAUNCHES - CAPACITY
    ), "the running instances are not the first 100 to join the queue"
    waiting = queue_order(db, ids)
    assert waiting == joined[CAPACITY:]
    for worker in workers:
        assert "pipeline.schedule" in worker.output(), worker.output()[-2000:]

    # -- destroy the running ones, wave after wave: the queue drains in submission order --------
    waves = []
    while running := [i for i in ids if current[i][0] == "running"]:
        began = time.monotonic()
        replies = in_pool(
            running, lambda i: call(port, "DELETE", f"/instances/{i}", token=ADMIN_TOKEN)
        )
        assert Counter(r.status for r in replies) == {202: len(running)}, [
            (r.status, r.error or r.body) for r in replies if r.status != 202
        ][:5]
        destroyed = sum(status == "destroyed" for status, _ in current.values()) + len(running)
        left = LAUNCHES - destroyed
        running_next = min(CAPACITY, left)
        expected = Counter(destroyed=destroyed, running=running_next, queued=left - running_next)
        current = wait_until(
            lambda expected=expected: settled(db, ids, expected),
            lambda expected=expected: f"{dict(expected)}: {dict(status_counts(db, ids))}",
            timeout=300,
            interval=0.5,
        )
        waves.append(time.monotonic() - began)
        assert_no_overcommit(db)
        assert queue_order(db, ids) == waiting[len(waves) * CAPACITY :]
    print("drained in waves of destroys: " + ", ".join(f"{s:.1f} s" for s in waves))
    assert len(waves) == LAUNCHES // CAPACITY

    # Every queued instance was placed in the order it joined the queue.
    assert [i for i, _at in scheduling_order(db, waiting)] == waiting

    # -- everything destroyed, the inventory exactly as it started ----------------------------
    assert status_counts(db, ids) == {"destroyed": LAUNCHES}
    assert_nothing_allocated(db)
    assert inventory_snapshot(db) == before
    web_output = web_log.read_text(errors="replace")
    assert "WORKER TIMEOUT" not in web_output and "Traceback" not in web_output, web_output[-3000:]
    print(f"whole scenario: {time.monotonic() - started:.1f} s")
