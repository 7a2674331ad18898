"""The life of a token: rotated by its user or an admin, revoked, expiring; users disabled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from bigdata_paas.models import User, utcnow
from bigdata_paas.operations.sessions import session_caller
from bigdata_paas.operations.users import ensure_admin, hash_token
from tests.api.support import API, error_of, launch, problem_fields
from tests.conftest import ADMIN_TOKEN, bearer
from tests.security.support import assert_unchanged, db_state


def whoami(client, headers):
    return client.get(f"{API}/users/me", headers=headers)


def test_rotating_your_own_token_refuses_the_old_one(client, make_user):
    old = make_user("alice")
    response = client.post(f"{API}/users/me/token", headers=old)
    assert response.status_code == 201
    body = response.get_json()
    assert body["name"] == "alice" and body["expires_at"] is None
    new = bearer(body["token"])
    assert whoami(client, new).get_json()["name"] == "alice"
    refused = whoami(client, old)
    assert refused.status_code == 401
    assert error_of(refused)["code"] == "unauthorized"


def test_an_admin_rotates_and_revokes_anothers_token(client, admin, make_user):
    old = make_user("alice")
    response = client.post(f"{API}/users/alice/token", json={}, headers=admin)
    assert response.status_code == 201
    new = bearer(response.get_json()["token"])
    assert whoami(client, old).status_code == 401
    assert whoami(client, new).status_code == 200
    assert client.delete(f"{API}/users/alice/token", headers=admin).status_code == 204
    assert whoami(client, new).status_code == 401
    again = client.post(f"{API}/users/alice/token", headers=admin)
    assert whoami(client, bearer(again.get_json()["token"])).status_code == 200


def test_a_token_with_an_expiry_is_refused_after_it(app, client, make_user):
    alice = make_user("alice")
    response = client.post(f"{API}/users/me/token", json={"expires_in": 3600}, headers=alice)
    assert response.status_code == 201
    body = response.get_json()
    token = bearer(body["token"])
    me = whoami(client, token).get_json()
    assert me["token_expires_at"] == body["expires_at"] is not None
    # the clock is not waited for: the expiry is moved into the past
    with app.extensions["paas"].db.session() as session:
        session.execute(
            update(User)
            .where(User.name == "alice")
            .values(token_expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    refused = whoami(client, token)
    assert refused.status_code == 401
    assert "expired" in error_of(refused)["message"]


def test_a_disabled_user_cannot_call_the_api_and_their_instances_stay(client, admin, make_user):
    alice = make_user("alice")
    instance = launch(client, alice, "sized", "1", {"n": 1})
    response = client.patch(f"{API}/users/alice", json={"disabled": True}, headers=admin)
    assert response.status_code == 200
    assert response.get_json()["disabled"] is True
    refused = whoami(client, alice)
    assert refused.status_code == 401
    assert "disabled" in error_of(refused)["message"]
    shown = client.get(f"{API}/instances/{instance['id']}", headers=admin).get_json()
    assert shown["status"] == "pending"
    assert client.get(f"{API}/users/alice", headers=admin).get_json()["disabled"] is True
    enabled = client.patch(f"{API}/users/alice", json={"disabled": False}, headers=admin)
    assert enabled.status_code == 200
    assert whoami(client, alice).status_code == 200


def test_an_admin_can_neither_disable_themselves_nor_revoke_their_own_token(app, client, admin):
    before = db_state(app)
    response = client.patch(f"{API}/users/admin", json={"disabled": True}, headers=admin)
    assert response.status_code == 409
    assert client.delete(f"{API}/users/admin/token", headers=admin).status_code == 409
    assert_unchanged(before, db_state(app), "refused self-lockouts")


@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    [
        ("/users/me/token", "post", {"expires_in": 0}, "expires_in"),
        ("/users/me/token", "post", {"expires_in": "60"}, "expires_in"),
        ("/users/me/token", "post", {"expires": 60}, "expires"),
        ("/users/alice/token", "post", {"expires_in": -5}, "expires_in"),
        ("/users/alice", "patch", {"disabled": "yes"}, "disabled"),
        ("/users/alice", "patch", {}, "disabled"),
        ("/users/alice", "patch", {"role": "admin"}, "role"),
    ],
)
def test_bad_token_and_user_changes_are_refused_naming_the_field(
    app, client, admin, make_user, path, method, body, field
):
    make_user("alice")
    before = db_state(app)
    response = getattr(client, method)(f"{API}{path}", json=body, headers=admin)
    assert response.status_code == 400
    assert field in problem_fields(response)
    assert_unchanged(before, db_state(app), path)


def test_users_cannot_touch_other_users(client, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    for method, path in (
        ("post", "/users/bob/token"),
        ("delete", "/users/bob/token"),
        ("patch", "/users/bob"),
        ("get", "/users/bob"),
    ):
        kwargs = {"json": {"disabled": True}} if method == "patch" else {}
        response = getattr(client, method)(f"{API}{path}", headers=alice, **kwargs)
        assert response.status_code == 403, path
    assert whoami(client, bob).status_code == 200


def test_me_is_not_a_user_name(client, admin):
    response = client.post(f"{API}/users", json={"name": "me"}, headers=admin)
    assert response.status_code == 400
    assert problem_fields(response) == {"name"}


def test_setup_with_the_admin_token_is_the_operators_way_back_in(app, client, admin):
    rotated = client.post(f"{API}/users/me/token", json={"expires_in": 60}, headers=admin)
    assert whoami(client, admin).status_code == 401
    with app.extensions["paas"].db.session() as session:
        session.execute(update(User).where(User.name == "admin").values(disabled=True))
        session.commit()
    assert whoami(client, bearer(rotated.get_json()["token"])).status_code == 401
    ensure_admin(app.extensions["paas"], ADMIN_TOKEN)
    me = whoami(client, admin).get_json()
    assert (me["disabled"], me["token_expires_at"]) == (False, None)


def test_a_digest_names_its_user_only_while_the_token_works(app, client, admin, make_user):
    rt = app.extensions["paas"]
    alice = make_user("alice")
    digest = hash_token(alice["Authorization"].removeprefix("Bearer "))
    assert session_caller(rt, digest).name == "alice"
    client.patch(f"{API}/users/alice", json={"disabled": True}, headers=admin)
    assert session_caller(rt, digest) is None
    client.patch(f"{API}/users/alice", json={"disabled": False}, headers=admin)
    with rt.db.session() as session:
        session.execute(
            update(User)
            .where(User.name == "alice")
            .values(token_expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    assert session_caller(rt, digest) is None
