"""The queue seen through /metrics while launches come and go (bench/load.py's scenario, small).

Hosts for 10 one-node instances, 25 launches, a real worker: scrapes of ``GET /metrics`` see
``paas_queued_instances`` rise to (at least) the 15 that do not fit, with an oldest wait, then
fall back to 0 as the running instances are destroyed wave after wave, while
``paas_launches_total`` says 25 and the launch-to-running histogram counts every instance that
ran.
"""

from __future__ import annotations

import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.load import NAME, VERSION, register
from tests.api.support import API
from tests.conftest import ADMIN_TOKEN, bearer, wait_until

pytestmark = pytest.mark.integration

CAPACITY, LAUNCHES = 10, 25


def scrape(client) -> dict[str, float]:
    response = client.get(f"{API}/metrics", headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 200
    return {
        s.name: s.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
        if not s.labels
    }


def test_the_queued_gauge_rises_and_falls_back(app, client, admin, worker):
    register(client, CAPACITY, token=ADMIN_TOKEN)
    seen = [scrape(client)["paas_queued_instances"]]  # before the launches: none
    stop = threading.Event()
    scraper = app.test_client()

    def watch() -> None:
        while not stop.wait(0.2):
            seen.append(scrape(scraper)["paas_queued_instances"])

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        ids = []
        for i in range(LAUNCHES):
            response = client.post(
                f"{API}/services/{NAME}/{VERSION}", json={"label": f"l{i}"}, headers=admin
            )
            assert response.status_code == 202, response.get_json()
            ids.append(response.get_json()["id"])

        def statuses() -> dict[str, int]:
            counts: dict[str, int] = {}
            for instance_id in ids:
                body = client.get(f"{API}/instances/{instance_id}", headers=admin).get_json()
                counts[body["status"]] = counts.get(body["status"], 0) + 1
            return counts

        wait_until(
            lambda: statuses() == {"running": CAPACITY, "queued": LAUNCHES - CAPACITY},
            lambda: f"10 running and 15 queued: {statuses()}",
            timeout=120,
            interval=0.5,
        )
        full = scrape(client)
        # one of the scrapes, in time order with the watcher's: the full queue may last less
        # than the watcher's period before the first destroys (the pipeline is quick)
        seen.append(full["paas_queued_instances"])
        assert full["paas_queued_instances"] == LAUNCHES - CAPACITY
        assert full["paas_queue_oldest_wait_seconds"] > 0
        destroyed: set[str] = set()
        while len(destroyed) < LAUNCHES:
            running = [
                i
                for i in ids
                if i not in destroyed
                and client.get(f"{API}/instances/{i}", headers=admin).get_json()["status"]
                == "running"
            ]
            for instance_id in running:
                response = client.delete(f"{API}/instances/{instance_id}", headers=admin)
                assert response.status_code == 202
                destroyed.add(instance_id)
            remaining = LAUNCHES - len(destroyed)
            wait_until(
                lambda r=remaining: statuses().get("running", 0) == min(r, CAPACITY),
                lambda: f"the next wave to run: {statuses()}",
                timeout=120,
                interval=0.5,
            )
        wait_until(
            lambda: statuses() == {"destroyed": LAUNCHES},
            lambda: f"every instance destroyed: {statuses()}",
            timeout=120,
            interval=0.5,
        )
    finally:
        stop.set()
        watcher.join()
    empty = scrape(client)
    assert empty["paas_queued_instances"] == 0
    assert empty["paas_queue_oldest_wait_seconds"] == 0
    assert empty["paas_launches_total"] == LAUNCHES
    assert empty["paas_launch_to_running_seconds_count"] == LAUNCHES
    # the scrapes saw it rise to the full queue and come back down; on a busy machine more
    # launches may wait in the queue at once before the schedule steps place the first ten
    peak = seen.index(max(seen))
    assert LAUNCHES - CAPACITY <= max(seen) <= LAUNCHES, seen
    assert seen[0] == 0 and 0 in seen[peak:], seen
