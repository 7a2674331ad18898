"""Capacity changes wake the queue by themselves, after their commit, once per wave."""

from __future__ import annotations

import pytest

from bigdata_paas import states
from bigdata_paas.messaging import publish as publishing
from bigdata_paas.operations import lifecycle
from bigdata_paas.operations.lifecycle import queueing, running
from tests.api.support import API, add_tiny
from tests.api.support import launch as launch_instance


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """The task names published (the broker is not read: no worker runs here)."""
    names: list[str] = []
    real = publishing.publish

    def record(celery, sig):
        names.append(sig.task)
        real(celery, sig)

    monkeypatch.setattr(publishing, "publish", record)
    return names


@pytest.fixture
def full(app, client, admin):
    """A host of 4 cores, four 1-core instances placed on it and a fifth one queued."""
    add_tiny(client, admin)
    host = {"name": "h1", "address": "127.0.0.1", "cpu": 4, "mem": 8192}
    assert client.post(f"{API}/hosts", json=host, headers=admin).status_code == 201
    rt = app.extensions["paas"]
    ids = []
    for _ in range(5):
        instance_id = launch_instance(client, admin, "tiny", "1")["id"]
        for step in ("prepare", "submit", "queue", "schedule"):
            lifecycle.STEP_RUNNERS[step](rt, instance_id)
        ids.append(instance_id)
    statuses = [client.get(f"{API}/instances/{i}", headers=admin).get_json()["status"] for i in ids]
    assert statuses == [states.SCHEDULED] * 4 + [states.QUEUED]
    return ids


def destroy(client, admin, rt, instance_id: str) -> None:
    assert client.delete(f"{API}/instances/{instance_id}", headers=admin).status_code == 202
    assert running.finish_destroy(rt, instance_id) == states.DESTROYED


def test_a_wave_of_releases_asks_for_one_drain(app, client, admin, full, sent):
    rt = app.extensions["paas"]
    for instance_id in full[:3]:
        destroy(client, admin, rt, instance_id)
    # three releases, one drain asked for: it has not started, and will see all three
    assert sent.count("pipeline.drain_queue") == 1
    assert queueing.drain_queue(rt) == 1
    # the drain started: the next release asks again
    destroy(client, admin, rt, full[3])
    assert sent.count("pipeline.drain_queue") == 1  # nothing queued any more: no drain


def test_a_release_after_a_drain_started_asks_again(app, client, admin, full, sent):
    rt = app.extensions["paas"]
    destroy(client, admin, rt, full[0])
    assert sent.count("pipeline.drain_queue") == 1
    # the drain finds room for the queued one; then a new one queues behind the full host
    assert queueing.drain_queue(rt) == 1
    late = launch_instance(client, admin, "tiny", "1")["id"]
    for step in ("prepare", "submit", "queue", "schedule"):
        lifecycle.STEP_RUNNERS[step](rt, late)
    destroy(client, admin, rt, full[1])
    assert sent.count("pipeline.drain_queue") == 2


def test_a_rolled_back_release_sends_nothing(app, client, admin, full, sent):
    rt = app.extensions["paas"]
    from bigdata_paas.operations import allocations

    with rt.db.session() as session:
        assert allocations.release(session, full[0])
        session.rollback()
    assert "pipeline.drain_queue" not in sent


def test_inventory_changes_wake_the_queue(app, client, admin, full, sent):
    more = {"name": "h2", "address": "127.0.0.1", "cpu": 1, "mem": 1024}
    assert client.post(f"{API}/hosts", json=more, headers=admin).status_code == 201
    assert sent.count("pipeline.drain_queue") == 1
    assert queueing.drain_queue(app.extensions["paas"]) == 1
