"""Destroying instances: from each status, by the owner or an admin."""

from __future__ import annotations

import pytest

from tests.api.support import API, error_of, launch, set_status
from tests.conftest import ADMIN_TOKEN, bearer

INSTANCES = f"{API}/instances"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", 202),
        ("queued", 202),
        ("scheduled", 202),
        ("running", 202),
        ("failed", 202),
        ("destroying", 202),
        ("destroyed", 409),
    ],
)
def test_delete_from_each_status(shared_client, shared_app, shared_user, status, expected):
    client, alice = shared_client, shared_user()
    instance_id = launch(client, alice, "cdh", "5.7.2")["id"]
    set_status(shared_app, instance_id, status)
    response = client.delete(f"{INSTANCES}/{instance_id}", headers=alice)
    assert response.status_code == expected
    after = client.get(f"{INSTANCES}/{instance_id}", headers=alice).get_json()["status"]
    assert after == ("destroying" if expected == 202 else status)
    if expected == 409:
        assert error_of(response)["code"] == "conflict"


def test_an_admin_can_destroy_anyones_instance(shared_client, shared_user):
    instance_id = launch(shared_client, shared_user("bob"), "gluster", "3.7.11")["id"]
    response = shared_client.delete(f"{INSTANCES}/{instance_id}", headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 202
    assert response.get_json()["user"] == "bob"
    assert response.get_json()["status"] == "destroying"


def test_destroy_all_asks_for_every_destroy_and_says_when_nobody_does_it(
    app, client, admin, make_user
):
    """``paas destroy-all`` destroys every instance of every user, as DELETE does; with
    --wait and no platform running (no worker here), it says so and fails."""
    from tests.conftest import register_example

    register_example(client, admin, "cdh", "5.7.2")
    ids = [launch(client, make_user(), "cdh", "5.7.2")["id"] for _ in range(3)]
    set_status(app, ids[1], "running")
    set_status(app, ids[2], "destroyed")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["paas", "destroy-all"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"instance {ids[0]} (cdh 5.7.2): destroying",
        f"instance {ids[1]} (cdh 5.7.2): destroying",
    ]
    statuses = [client.get(f"{INSTANCES}/{i}", headers=admin).get_json()["status"] for i in ids]
    assert statuses == ["destroying", "destroying", "destroyed"]
    waited = runner.invoke(args=["paas", "destroy-all", "--wait", "--timeout", "1"])
    assert waited.exit_code == 1
    assert f"still not destroyed after 1 s: {', '.join(sorted(ids[:2]))}" in waited.output
    assert "is the platform running (`make run`)?" in waited.output


def test_destroy_all_without_instances(app):
    result = app.test_cli_runner().invoke(args=["paas", "destroy-all", "--wait"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "no instance to destroy",
        "no node of this deployment is left on this machine",
    ]
