"""The status machine is the table: every edge of ``states.TRANSITIONS`` is taken by the real
steps and operations, and nothing else is.

The steps are called as a worker calls them (the use cases, and the Celery task wrapper for a
crash); launches, destroys and retries go through the API. Every ``advance`` in the package is
wrapped to record the (step, from, to) it really moved.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from bigdata_paas import states
from bigdata_paas.errors import Unavailable
from bigdata_paas.models import Host, Service, utcnow
from bigdata_paas.operations import instances as instance_ops
from bigdata_paas.operations import lifecycle
from bigdata_paas.operations import resize as resize_ops
from bigdata_paas.operations.lifecycle import agents, queueing, resizing, steps, transitions
from tests.api.support import API, TINY_TEMPLATE, add_tiny, launch

OPTIONS = {
    "required": {"n": 1},
    "optional": {"cpu": 1, "fail": False},
    "descriptions": {"n": "nodes", "cpu": "cores per node", "fail": "start exits 1"},
}
#: exits 1 on start when the option ``fail`` is true
ORQUESTRATOR = """# paas-actions: scale-out decommission
import json, os, sys
doc = json.load(open(os.environ["PAAS_INSTANCE_FILE"]))
sys.exit(1 if sys.argv[1] == "start" and doc["options"]["fail"] else 0)
"""


@pytest.fixture
def recorded(monkeypatch) -> set[tuple[str, str, str]]:
    """Wrap every reference to ``advance`` in the package; collect the moves it made."""
    real = transitions.advance
    taken: set[tuple[str, str, str]] = set()

    def recording(session, instance_id, step, to, *args, **kwargs):
        before = transitions.status_of(session, instance_id)
        moved = real(session, instance_id, step, to, *args, **kwargs)
        if moved:
            taken.add((step, before, to))
        return moved

    patched = 0
    for name, module in list(sys.modules.items()):
        if name.startswith("bigdata_paas") and getattr(module, "advance", None) is real:
            monkeypatch.setattr(module, "advance", recording)
            patched += 1
    assert patched >= 4, "advance is imported by the steps and the instance operations"
    return taken


@pytest.fixture
def stack(app, client, admin):
    add_tiny(client, admin, options=OPTIONS, orquestrator=ORQUESTRATOR)
    host = {"name": "h1", "address": "127.0.0.1", "cpu": 8, "mem": 8192}
    assert client.post(f"{API}/hosts", json=host, headers=admin).status_code == 201
    return app


def rt_of(app):
    return app.extensions["paas"]


def status(client, admin, instance_id: str) -> str:
    return client.get(f"{API}/instances/{instance_id}", headers=admin).get_json()["status"]


def walk(app, instance_id: str, until: str) -> None:
    """Run the launch steps in order, from the instance's status on, until it is ``until``."""
    rt = rt_of(app)
    with rt.db.session() as session:
        now = transitions.status_of(session, instance_id)
    for step in states.LAUNCH[states.IN_FLIGHT.index(now) :]:
        if step.source == until:
            return
        assert lifecycle.STEP_RUNNERS[step.name](rt, instance_id) == step.target


def instance_in(app, client, admin, wanted: str, **options) -> str:
    """A launched instance brought to ``wanted`` by the real steps."""
    instance_id = launch(client, admin, "tiny", "1", options)["id"]
    if wanted == states.FAILED:
        fail_at(app, client, admin, instance_id, "run")
    elif wanted == states.DEGRADED:
        walk(app, instance_id, states.RUNNING)
        silence(app)
    else:
        walk(app, instance_id, wanted)
    assert status(client, admin, instance_id) == wanted
    return instance_id


def silence(app) -> None:
    """The host's agent reported once, then fell silent: the sweep's check marks it down."""
    rt = rt_of(app)
    agents.record_report(rt, "h1", {"driver": "process", "nodes": []})
    with rt.db.session() as session:
        session.execute(update(Host).values(agent_seen_at=utcnow() - timedelta(days=1)))
        session.commit()
    with pytest.MonkeyPatch.context() as patch:  # this worker has listened for a long time
        patch.setattr(agents, "LISTENING_SINCE", time.monotonic() - 10 * 86400)
        assert agents.check_hosts(rt) == ["h1"]


def test_a_platform_that_starts_again_gives_its_agents_time_to_report(stack, client, admin):
    """After the whole platform was stopped, old agent reports are not silence: no host goes
    down (and no instance is degraded) until HOST_DOWN_AFTER has passed since the start."""
    rt = rt_of(stack)
    instance_id = instance_in(stack, client, admin, states.RUNNING)
    agents.record_report(rt, "h1", {"driver": "process", "nodes": []})
    with rt.db.session() as session:
        session.execute(update(Host).values(agent_seen_at=utcnow() - timedelta(days=1)))
        session.commit()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(agents, "LISTENING_SINCE", time.monotonic())  # just started
        assert agents.check_hosts(rt) == []
    host = client.get(f"{API}/hosts/h1", headers=admin).get_json()
    assert host["state"] == "up"
    assert status(client, admin, instance_id) == states.RUNNING
    silence(stack)  # later, the same silence is a host down
    assert status(client, admin, instance_id) == states.DEGRADED


def fail_at(app, client, admin, instance_id: str, step: str) -> None:
    """Make the real ``step`` fail the instance, the way it fails in production."""
    rt = rt_of(app)
    walk(app, instance_id, states.STEPS[step].source)
    if step == "prepare":  # the operator broke the template after the launch was accepted
        with rt.db.session() as session:
            session.execute(update(Service).values(template="{{ nodes ]]"))
            session.commit()
        try:
            assert steps.prepare(rt, instance_id) == states.FAILED
        finally:
            with rt.db.session() as session:
                session.execute(update(Service).values(template=TINY_TEMPLATE))
                session.commit()
    elif step == "submit":  # nodes larger than any host: the launch is accepted, then refused
        with rt.db.session() as session:
            session.execute(
                update(lifecycle.steps.Instance)
                .where(lifecycle.steps.Instance.id == instance_id)
                .values(spec={"nodes": {"big": {"cpu": 999, "mem": 1}}, "services": {}})
            )
            session.commit()
        assert steps.submit(rt, instance_id) == states.FAILED
    elif step in ("queue", "schedule"):  # a bug: the Celery task fails the instance
        from bigdata_paas.tasks import pipeline as tasks

        def crash(*_args, **_kwargs):
            raise RuntimeError("injected")

        target = (steps, "utcnow") if step == "queue" else (queueing.QueuePass, "run")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(*target, crash)
            with app.app_context():
                assert getattr(tasks, step)(instance_id) == "failed"
    else:  # the orquestrator's start exits 1
        with rt.db.session() as session:
            instance = session.get(lifecycle.steps.Instance, instance_id)
            instance.merged_options = {**instance.merged_options, "fail": True}
            session.commit()
        assert lifecycle.STEP_RUNNERS["run"](rt, instance_id) == states.FAILED
    assert status(client, admin, instance_id) == states.FAILED


def test_every_edge_is_taken_and_no_other(stack, client, admin, recorded):
    app = stack
    rt = rt_of(app)
    # the launch chain, to running
    running = instance_in(app, client, admin, states.RUNNING)
    # its host's agent falls silent: degraded; the agent reports again: running again
    silence(app)
    assert status(client, admin, running) == states.DEGRADED
    agents.record_report(rt, "h1", {"driver": "process", "nodes": []})
    assert status(client, admin, running) == states.RUNNING

    # a resize: running -> updating -> running; the broker refusing it puts it back at once
    assert (
        client.patch(
            f"{API}/instances/{running}", json={"options": {"n": 2}}, headers=admin
        ).status_code
        == 202
    )
    assert status(client, admin, running) == states.UPDATING
    assert resizing.resize(rt, running) == states.RUNNING
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resize_ops, "publish_resize", refuse)
        response = client.patch(
            f"{API}/instances/{running}", json={"options": {"n": 1}}, headers=admin
        )
        assert response.status_code == 503
    assert status(client, admin, running) == states.RUNNING

    # every launch step fails from its own source, and each failure retries from its restart
    for step in states.LAUNCH_STEPS:
        instance_id = launch(client, admin, "tiny", "1", {})["id"]
        fail_at(app, client, admin, instance_id, step)
        response = client.post(f"{API}/instances/{instance_id}/retry", headers=admin)
        assert response.status_code == 202, response.get_json()
        assert response.get_json()["status"] == states.RETRY_FROM[step][0]
        # the broker refuses the retry: the instance fails again as it was
        fail_at(app, client, admin, instance_id, step)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(instance_ops, "publish_chain", refuse)
            response = client.post(f"{API}/instances/{instance_id}/retry", headers=admin)
            assert response.status_code == 503
        assert status(client, admin, instance_id) == states.FAILED

    # destroy from every destroyable status; the broker refusing it puts the instance back
    for source in states.DESTROYABLE:
        instance_id = (
            running if source == states.RUNNING else instance_in(app, client, admin, source)
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(instance_ops, "publish_destroy", refuse)
            response = client.delete(f"{API}/instances/{instance_id}", headers=admin)
            assert response.status_code == 503
        assert status(client, admin, instance_id) == source
        assert client.delete(f"{API}/instances/{instance_id}", headers=admin).status_code == 202
        assert lifecycle.STEP_RUNNERS["destroy"](rt, instance_id) == states.DESTROYED
        agents.record_report(rt, "h1", {"driver": "process", "nodes": []})  # the host is back

    assert recorded - states.TRANSITIONS == set(), "moves the table lacks"
    assert states.TRANSITIONS - recorded == set(), "edges of the table no step takes"


def refuse(*_args, **_kwargs):
    raise Unavailable("broker down (injected)")


def test_advance_refuses_a_move_the_table_lacks(stack, client, admin):
    app = stack
    instance_id = launch(client, admin, "tiny", "1", {})["id"]
    with rt_of(app).db.session() as session:
        with pytest.raises(states.IllegalTransition):
            transitions.advance(session, instance_id, "prepare", states.RUNNING)
        with pytest.raises(states.IllegalTransition):
            transitions.advance(
                session, instance_id, "destroy", states.RUNNING, source=states.PENDING
            )
        session.rollback()
    assert status(client, admin, instance_id) == states.PENDING


def test_derived_tables_follow_the_launch_chain():
    assert states.LAUNCH_STEPS == ("prepare", "submit", "queue", "schedule", "run")
    assert set(lifecycle.STEP_RUNNERS) == {*states.LAUNCH_STEPS, "destroy"}
    # the sweep republishes every in-flight status but the one that waits for capacity
    assert states.NEXT_STEP == {
        states.PENDING: "prepare",
        states.PREPARED: "submit",
        states.SUBMITTED: "queue",
        states.SCHEDULED: "run",
    }
    assert states.RETRY_FROM["run"] == (states.SUBMITTED, "queue")
    assert states.RETRY_FROM["prepare"] == (states.PENDING, "prepare")
    assert states.chain_from("queue") == ("queue", "schedule", "run")
