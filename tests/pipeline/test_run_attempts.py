"""Two attempts of one run step: the sweep gives a start whose heartbeat looked lost to a new
attempt, and the first one then comes back. What runs is the later attempt's: the first one
neither stops it nor releases what it holds."""

from __future__ import annotations

from sqlalchemy import select, update

from bigdata_paas import states
from bigdata_paas.models import Host, Instance
from bigdata_paas.operations import lifecycle
from bigdata_paas.operations.lifecycle import running
from tests.api.support import API, add_tiny
from tests.api.support import launch as launch_instance


def test_a_run_attempt_that_lost_its_claim_leaves_the_running_instance_alone(
    app, client, admin, monkeypatch
):
    add_tiny(client, admin)
    host = {"name": "h1", "address": "127.0.0.1", "cpu": 4, "mem": 4096}
    assert client.post(f"{API}/hosts", json=host, headers=admin).status_code == 201
    rt = app.extensions["paas"]
    instance_id = launch_instance(client, admin, "tiny", "1")["id"]
    for step in ("prepare", "submit", "queue", "schedule"):
        lifecycle.STEP_RUNNERS[step](rt, instance_id)

    real = running.run_orquestrator
    commands: list[tuple[str, str]] = []

    def first_attempt_is_slow(rt_, iid, command, **kwargs):
        commands.append((iid, command))
        if command == "start" and len(commands) == 1:
            # while attempt A starts, the sweep takes it for lost (its claim is released)
            # and attempt B runs the instance to the end
            with rt.db.session() as session:
                session.execute(update(Instance).values(run_token=None))
                session.commit()
            assert running.run(rt, instance_id, token="B") == states.RUNNING
        return real(rt_, iid, command, **kwargs)

    monkeypatch.setattr(running, "run_orquestrator", first_attempt_is_slow)
    assert running.run(rt, instance_id, token="A") == "skipped"

    body = client.get(f"{API}/instances/{instance_id}", headers=admin).get_json()
    assert body["status"] == states.RUNNING
    with rt.db.session() as session:
        assert session.scalar(select(Host.cpu_used)) == 1  # the node still holds its core
    # A never ran the orquestrator's stop on B's cluster
    assert "stop" not in [c for _i, c in commands], commands
