"""Quotas through the API: limits per user and for everyone, checked at launch and retry,
shown by GET /users/me and by a plan."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bigdata_paas.models import Instance
from bigdata_paas.operations.users import create_user
from tests.api.support import API, error_of, launch, problems, set_status
from tests.conftest import ADMIN_TOKEN, base_env, bearer, make_app
from tests.quotas.support import register_sized
from tests.security.support import assert_unchanged, db_state

LIMITS = ("instances", "nodes", "cpu", "mem", "disks")


def put_quota(client, admin, name: str, body: dict) -> dict:
    response = client.put(f"{API}/users/{name}/quota", json=body, headers=admin)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def me(client, headers) -> dict:
    response = client.get(f"{API}/users/me", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def env(data_root, each_database):
    """Every test here on SQLite and on PostgreSQL, whose launches check the quota on the
    driver (operations/instances.py: _commit_on_driver)."""
    return base_env(data_root / "var", **each_database)


@pytest.fixture
def alice(make_user):
    return make_user("alice")


def test_a_launch_over_quota_is_refused_with_every_dimension_over_and_changes_nothing(
    app, client, admin, alice
):
    put_quota(client, admin, "alice", {"instances": 2, "nodes": 3, "cpu": 5, "mem": None})
    launch(client, alice, "sized", "1", {"n": 2, "cpu": 2})  # 2 nodes, 4 cores
    before = db_state(app)
    response = client.post(f"{API}/services/sized/1", json={"n": 2, "cpu": 1}, headers=alice)
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "quota_exceeded"
    assert error["details"]["exceeded"] == [
        {"resource": "nodes", "requested": 2, "used": 2, "limit": 3},
        {"resource": "cpu", "requested": 2, "used": 4, "limit": 5},
    ]
    assert "nodes: 2 requested, 2 used of 3" in error["message"]
    assert_unchanged(before, db_state(app), "a refused launch")
    # what still fits is accepted: mem is unlimited, one instance slot is left
    launch(client, alice, "sized", "1", {"n": 1, "cpu": 1, "mem": 100000})
    quota = me(client, alice)["quota"]
    assert quota["instances"] == {"limit": 2, "used": 2}
    assert quota["nodes"] == {"limit": 3, "used": 3}
    assert quota["mem"] == {"limit": None, "used": 2 * 128 + 100000}


def test_queued_instances_count_failed_and_destroyed_ones_do_not(app, client, admin, alice):
    put_quota(client, admin, "alice", {"instances": 1})
    first = launch(client, alice, "sized", "1", {"n": 1})
    for status in ("queued", "running", "degraded", "destroying"):
        set_status(app, first["id"], status)
        response = client.post(f"{API}/services/sized/1", json={"n": 1}, headers=alice)
        assert response.status_code == 403, status
        assert error_of(response)["details"]["exceeded"][0]["resource"] == "instances"
    set_status(app, first["id"], "destroyed")
    second = launch(client, alice, "sized", "1", {"n": 1})
    set_status(app, second["id"], "failed")
    launch(client, alice, "sized", "1", {"n": 1})
    assert me(client, alice)["quota"]["instances"] == {"limit": 1, "used": 1}


def test_a_retry_takes_its_share_back_and_is_refused_over_quota(app, client, admin, alice):
    put_quota(client, admin, "alice", {"nodes": 2})
    failed = launch(client, alice, "sized", "1", {"n": 2})
    with app.extensions["paas"].db.session() as session:
        row = session.get(Instance, failed["id"])
        row.status, row.failed_step, row.error = "failed", "prepare", "boom"
        session.commit()
    launch(client, alice, "sized", "1", {"n": 1})
    response = client.post(f"{API}/instances/{failed['id']}/retry", headers=alice)
    assert response.status_code == 403
    assert error_of(response)["details"]["exceeded"] == [
        {"resource": "nodes", "requested": 2, "used": 1, "limit": 2}
    ]
    with app.extensions["paas"].db.session() as session:
        assert session.get(Instance, failed["id"]).status == "failed"


def test_other_users_are_not_counted_and_admins_have_quotas_too(client, admin, alice, make_user):
    bob = make_user("bob")
    put_quota(client, admin, "alice", {"instances": 1})
    launch(client, bob, "sized", "1", {"n": 1})
    launch(client, alice, "sized", "1", {"n": 1})
    put_quota(client, admin, "admin", {"instances": 0})
    response = client.post(f"{API}/services/sized/1", json={"n": 1}, headers=admin)
    assert error_of(response)["code"] == "quota_exceeded"


def test_null_is_unlimited_and_a_missing_key_keeps_its_value(client, admin, alice):
    put_quota(client, admin, "alice", {"instances": 5, "nodes": 10, "cpu": 64, "mem": 262144})
    body = put_quota(client, admin, "alice", {"nodes": None, "disks": 3})
    assert {r: body[r]["limit"] for r in LIMITS} == {
        "instances": 5,
        "nodes": None,
        "cpu": 64,
        "mem": 262144,
        "disks": 3,
    }
    assert me(client, alice)["quota"] == body


def test_defaults_for_everyone_from_config_then_admin_then_the_user(data_root, each_database):
    env = base_env(
        data_root / "var",
        PAAS_DEFAULT_QUOTA_INSTANCES="3",
        PAAS_DEFAULT_QUOTA_CPU="8",
        **each_database,
    )
    app = make_app(env)
    try:
        client = app.test_client()
        register_sized(client)
        admin = bearer(ADMIN_TOKEN)
        carol = bearer(create_user(app.extensions["paas"], "carol", actor="admin")["token"])
        limits = {r: v["limit"] for r, v in me(client, carol)["quota"].items()}
        assert limits == {"instances": 3, "nodes": None, "cpu": 8, "mem": None, "disks": None}
        response = client.put(f"{API}/quotas/default", json={"cpu": 2, "disks": 0}, headers=admin)
        assert response.status_code == 200
        assert response.get_json() == {
            "instances": 3,
            "nodes": None,
            "cpu": 2,
            "mem": None,
            "disks": 0,
        }
        assert client.get(f"{API}/quotas/default", headers=admin).get_json()["cpu"] == 2
        refused = client.post(f"{API}/services/sized/1", json={"n": 1, "cpu": 3}, headers=carol)
        assert error_of(refused)["details"]["exceeded"] == [
            {"resource": "cpu", "requested": 3, "used": 0, "limit": 2}
        ]
        # a disk-less launch is not refused by a disks limit of 0
        launch(client, carol, "sized", "1", {"n": 1, "cpu": 2})
        put_quota(client, admin, "carol", {"cpu": None})
        launch(client, carol, "sized", "1", {"n": 1, "cpu": 30})
        assert me(client, carol)["quota"]["cpu"] == {"limit": None, "used": 32}
    finally:
        app.extensions["paas"].db.dispose()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"instances": -1}, "instances"),
        ({"cpu": 1.5}, "cpu"),
        ({"mem": "64"}, "mem"),
        ({"gpus": 2}, "gpus"),
        ({"disks": True}, "disks"),
        ([1], ""),
    ],
)
def test_bad_quotas_are_refused_naming_the_field(app, client, admin, alice, body, field):
    before = db_state(app)
    for path in (f"{API}/users/alice/quota", f"{API}/quotas/default"):
        response = client.put(path, json=body, headers=admin)
        assert response.status_code == 400, path
        assert field in {p["field"] for p in problems(response)}
    assert_unchanged(before, db_state(app), "bad quotas")


def test_quota_routes_are_for_admins(client, alice):
    assert client.put(f"{API}/users/alice/quota", json={"cpu": 1}, headers=alice).status_code == 403
    assert client.put(f"{API}/quotas/default", json={"cpu": 1}, headers=alice).status_code == 403
    assert client.get(f"{API}/quotas/default", headers=alice).status_code == 403
    assert client.put(f"{API}/users/nobody/quota", json={}, headers=alice).status_code == 403


def test_a_quota_for_an_unknown_user_is_a_404(client, admin):
    response = client.put(f"{API}/users/nobody/quota", json={"cpu": 1}, headers=admin)
    assert response.status_code == 404


def test_a_plan_reports_the_quota_check(client, admin, alice):
    put_quota(client, admin, "alice", {"nodes": 2, "disks": 1})
    response = client.post(f"{API}/services/sized/1/plan", json={"n": 3, "d": 1}, headers=alice)
    assert response.status_code == 200
    assert response.get_json()["quota"] == {
        "allowed": False,
        "exceeded": [
            {"resource": "nodes", "requested": 3, "used": 0, "limit": 2},
            {"resource": "disks", "requested": 3, "used": 0, "limit": 1},
        ],
    }
    response = client.post(f"{API}/services/sized/1/plan", json={"n": 1}, headers=alice)
    assert response.get_json()["quota"] == {"allowed": True, "exceeded": []}


def test_an_idempotent_replay_is_answered_even_at_the_limit(app, client, admin, alice):
    put_quota(client, admin, "alice", {"instances": 1})
    headers = {**alice, "Idempotency-Key": "k-1"}
    first = client.post(f"{API}/services/sized/1", json={"n": 1}, headers=headers)
    again = client.post(f"{API}/services/sized/1", json={"n": 1}, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    other = client.post(
        f"{API}/services/sized/1", json={"n": 1}, headers={**alice, "Idempotency-Key": "k-2"}
    )
    assert error_of(other)["code"] == "quota_exceeded"
    with app.extensions["paas"].db.session() as session:
        assert len(session.scalars(select(Instance.id)).all()) == 1
