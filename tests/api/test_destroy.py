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
