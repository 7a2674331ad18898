"""Users: an admin creates them, the token is shown once, and no listing shows a secret."""

from __future__ import annotations

import hashlib
import re

import pytest

from tests.api.support import API, error_of, problem_fields
from tests.conftest import ADMIN_TOKEN, bearer

USERS = f"{API}/users"


def names(client, headers) -> list[str]:
    response = client.get(USERS, headers=headers)
    assert response.status_code == 200
    return [user["name"] for user in response.get_json()["users"]]


def test_create_user_is_201_with_a_token_that_works(client, admin):
    response = client.post(USERS, json={"name": "alice"}, headers=admin)
    assert response.status_code == 201
    body = response.get_json()
    assert (body["name"], body["role"]) == ("alice", "user")
    token = body["token"]
    assert isinstance(token, str) and len(token) >= 32

    mine = client.get(f"{API}/instances", headers=bearer(token))
    assert mine.status_code == 200
    assert mine.get_json()["total"] == 0
    # a user, not an admin
    assert client.get(f"{API}/hosts", headers=bearer(token)).status_code == 403


def test_created_admin_can_administer(client, admin):
    response = client.post(USERS, json={"name": "ops", "role": "admin"}, headers=admin)
    assert response.status_code == 201
    token = response.get_json()["token"]
    assert response.get_json()["role"] == "admin"
    assert client.get(f"{API}/hosts", headers=bearer(token)).status_code == 200
    assert client.post(USERS, json={"name": "bob"}, headers=bearer(token)).status_code == 201


def test_tokens_differ_between_users(client, admin):
    first = client.post(USERS, json={"name": "a1"}, headers=admin).get_json()["token"]
    second = client.post(USERS, json={"name": "a2"}, headers=admin).get_json()["token"]
    assert first != second


@pytest.mark.parametrize(("name", "role"), [("alice", "user"), ("admin", "admin")])
def test_duplicate_user_is_409_and_changes_nothing(client, admin, name, role):
    token = ADMIN_TOKEN
    if name != "admin":
        token = client.post(USERS, json={"name": name}, headers=admin).get_json()["token"]
    again = client.post(USERS, json={"name": name, "role": "admin"}, headers=admin)
    assert again.status_code == 409
    assert error_of(again)["code"] == "conflict"
    assert "token" not in again.get_json()
    listed = client.get(USERS, headers=admin).get_json()["users"]
    assert {u["name"]: u["role"] for u in listed}[name] == role
    assert client.get(f"{API}/instances", headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "Alice"}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"name": "1abc"}, {"name"}),
        ({"name": "a b"}, {"name"}),
        ({"name": "carol\n"}, {"name"}),
        ({"name": "../a"}, {"name"}),
        ({"name": "a" * 65}, {"name"}),
        ({"name": 5}, {"name"}),
        ({}, {"name"}),
        ({"name": "carol", "role": "root"}, {"role"}),
        ({"name": "carol", "role": None}, {"role"}),
        ({"name": "carol", "role": "Admin"}, {"role"}),
        ({"name": "Carol", "role": "root"}, {"name", "role"}),
        ({"name": "carol", "token": "mine"}, {"token"}),
        ([1], {""}),
    ],
)
def test_bad_user_is_400(shared_client, admin, body, fields):
    before = names(shared_client, admin)
    response = shared_client.post(USERS, json=body, headers=admin)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_input"
    assert problem_fields(response) == fields
    assert names(shared_client, admin) == before


def test_users_are_admin_only(shared_client, admin, shared_user):
    user = shared_user()
    before = names(shared_client, admin)
    assert shared_client.get(USERS, headers=user).status_code == 403
    assert shared_client.post(USERS, json={"name": "eve"}, headers=user).status_code == 403
    assert names(shared_client, admin) == before


def test_listing_never_shows_tokens_or_hashes(client, admin):
    tokens = [
        client.post(USERS, json={"name": name, "role": role}, headers=admin).get_json()["token"]
        for name, role in (("alice", "user"), ("ops", "admin"))
    ]
    response = client.get(USERS, headers=admin)
    assert response.status_code == 200
    users = response.get_json()["users"]
    assert sorted(u["name"] for u in users) == ["admin", "alice", "ops"]
    assert {u["name"]: u["role"] for u in users}["ops"] == "admin"
    assert all(set(u) == {"name", "role", "disabled", "token_expires_at"} for u in users)
    text = response.get_data(as_text=True)
    for token in [*tokens, ADMIN_TOKEN]:
        assert token not in text
        assert hashlib.sha256(token.encode()).hexdigest() not in text
    assert re.search(r"[0-9a-f]{32}", text) is None
