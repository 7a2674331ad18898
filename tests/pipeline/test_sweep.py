"""The sweep drives on instances whose pipeline message was lost: the database knows them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bigdata_paas import states
from bigdata_paas.models import Event, Instance, Service, User, utcnow
from bigdata_paas.operations import lifecycle
from tests.conftest import load_example_hosts, register_example, wait_for_status

pytestmark = pytest.mark.integration


def orphan(app, status: str = states.PENDING, **values) -> str:
    """Commit an instance as if its launch message had been lost with the broker."""
    rt = app.extensions["paas"]
    with rt.db.session() as session:
        service = session.scalar(select(Service).where(Service.name == "gluster"))
        admin = session.scalar(select(User).where(User.name == "admin"))
        instance = Instance(
            user_id=admin.id,
            service_id=service.id,
            service_name="gluster",
            service_version="3.7.11",
            status=status,
            options={"size": 2, "disks": 1},
            **values,
        )
        session.add(instance)
        session.flush()
        session.add(Event(instance_id=instance.id, step="launch", status=status, message="x"))
        session.commit()
        old = utcnow() - timedelta(seconds=3600)
        session.execute(update(Instance).where(Instance.id == instance.id).values(updated_at=old))
        session.commit()
        return instance.id


def test_sweep_republishes_a_lost_launch(app, client, admin, worker):
    register_example(client, admin, "gluster", "3.7.11")
    load_example_hosts(client, admin)
    instance_id = orphan(app)
    fresh = orphan(app)
    with app.app_context():
        rt = app.extensions["paas"]
        with rt.db.session() as session:
            session.execute(
                update(Instance).where(Instance.id == fresh).values(updated_at=utcnow())
            )
            session.commit()
        counts = lifecycle.recovery.sweep(rt)
    assert counts["republished"] == 1
    body = wait_for_status(client, admin, instance_id, {"running", "failed"})
    assert body["status"] == "running", body.get("error")
    # the recent one is not touched: its message may just be on its way
    assert (
        client.get(f"/bigdata/api/v1/instances/{fresh}", headers=admin).get_json()["status"]
        == "pending"
    )


def test_sweep_restarts_a_start_whose_heartbeat_stopped(app, client, admin):
    register_example(client, admin, "gluster", "3.7.11")
    long_ago = utcnow() - timedelta(days=1)
    instance_id = orphan(
        app,
        status=states.SCHEDULED,
        started_at=long_ago,
        heartbeat_at=long_ago,
        run_token="dead-worker-task",
        run_attempts=1,
    )
    alive = orphan(
        app,
        status=states.SCHEDULED,
        started_at=long_ago,
        heartbeat_at=utcnow(),
        run_token="live-worker-task",
        run_attempts=1,
    )
    with app.app_context():
        counts = lifecycle.recovery.sweep(app.extensions["paas"])
    assert counts == {"republished": 0, "restarted": 1, "failed": 0, "placed": 0, "hosts_down": 0}
    with app.extensions["paas"].db.session() as session:
        tokens = dict(session.execute(select(Instance.id, Instance.run_token)).all())
    assert tokens[instance_id] is None  # free for the republished run message to claim
    assert tokens[alive] == "live-worker-task"
    events = client.get(
        f"/bigdata/api/v1/instances/{instance_id}/events", headers=admin
    ).get_json()["events"]
    assert "no heartbeat" in events[-1]["message"]


def test_sweep_gives_up_after_the_last_attempt(app, client, admin):
    register_example(client, admin, "gluster", "3.7.11")
    long_ago = utcnow() - timedelta(days=1)
    instance_id = orphan(
        app,
        status=states.SCHEDULED,
        started_at=long_ago,
        heartbeat_at=long_ago,
        run_token="t",
        run_attempts=3,
    )
    with app.app_context():
        counts = lifecycle.recovery.sweep(app.extensions["paas"])
    assert counts == {"republished": 0, "restarted": 0, "failed": 1, "placed": 0, "hosts_down": 0}
    body = client.get(f"/bigdata/api/v1/instances/{instance_id}", headers=admin).get_json()
    assert body["status"] == "failed"
    assert body["error"]["step"] == "run"
    assert "lost 3 time(s)" in body["error"]["reason"]
