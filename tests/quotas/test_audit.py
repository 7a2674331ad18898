"""The audit trail: each admin action once, with a digest of uploaded content; nothing for a
refused change; admins only."""

from __future__ import annotations

import hashlib
import json

from tests.api.support import API, TINY_OPTIONS, TINY_TEMPLATE, error_of
from tests.quotas.support import SIZED_ORQUESTRATOR


def trail(client, admin, query: str = "") -> list[dict]:
    response = client.get(f"{API}/audit?per_page=500{query}", headers=admin)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_each_admin_action_is_listed_once_newest_first(client, admin):
    start = len(trail(client, admin))  # the fixture registered the sized service
    host = {"name": "h1", "address": "127.0.0.1", "cpu": 2, "mem": 512, "disks": []}
    script = "import sys\nprint('v2', sys.argv)\n"
    calls = [
        ("post", "/services", {"json": {"name": "tiny", "version": "1"}}, 201),
        ("put", "/services/tiny/1/template", {"data": TINY_TEMPLATE}, 200),
        ("put", "/services/tiny/1/options", {"json": TINY_OPTIONS}, 200),
        ("put", "/services/tiny/1/orquestrator", {"data": script}, 200),
        ("post", "/networks", {"json": {"name": "lan", "cidr": "10.9.0.0/24"}}, 201),
        ("post", "/hosts", {"json": host}, 201),
        ("patch", "/hosts/h1", {"json": {"state": "drain"}}, 200),
        ("delete", "/hosts/h1", {}, 204),
        ("delete", "/networks/lan", {}, 204),
        ("post", "/users", {"json": {"name": "alice"}}, 201),
        ("put", "/users/alice/quota", {"json": {"instances": 2}}, 200),
        ("put", "/quotas/default", {"json": {"nodes": 10}}, 200),
        ("post", "/users/alice/token", {"json": {"expires_in": 60}}, 201),
        ("delete", "/users/alice/token", {}, 204),
        ("patch", "/users/alice", {"json": {"disabled": True}}, 200),
        ("post", "/users/me/token", {}, 201),
        ("delete", "/services/tiny/1", {}, 204),
    ]
    for method, path, kwargs, status in calls:
        response = getattr(client, method)(f"{API}{path}", headers=admin, **kwargs)
        assert response.status_code == status, (path, response.get_json())
        if path == "/users/me/token":
            admin = {"Authorization": f"Bearer {response.get_json()['token']}"}
    items = trail(client, admin)
    assert len(items) == start + len(calls)
    ours = list(reversed(items[: len(calls)]))
    assert [(e["action"], e["target"]) for e in ours] == [
        ("service.registered", "service:tiny/1"),
        ("service.template_changed", "service:tiny/1"),
        ("service.options_changed", "service:tiny/1"),
        ("service.orquestrator_changed", "service:tiny/1"),
        ("network.added", "network:lan"),
        ("host.added", "host:h1"),
        ("host.changed", "host:h1"),
        ("host.deleted", "host:h1"),
        ("network.deleted", "network:lan"),
        ("user.created", "user:alice"),
        ("quota.changed", "user:alice"),
        ("quota.default_changed", "quota:default"),
        ("token.rotated", "user:alice"),
        ("token.revoked", "user:alice"),
        ("user.disabled", "user:alice"),
        ("token.rotated", "user:admin"),
        ("service.deleted", "service:tiny/1"),
    ]
    assert {e["actor"] for e in ours} == {"admin"}
    assert all(e["at"].endswith("Z") for e in ours)
    assert ours[1]["details"]["sha256"] == sha256(TINY_TEMPLATE)
    assert ours[3]["details"]["sha256"] == sha256(script)
    stored = client.get(f"{API}/services/sized/1/options", headers=admin).get_json()
    sized = next(e for e in items if e["action"] == "service.options_changed" and e is not ours[2])
    canonical = json.dumps(stored, sort_keys=True, separators=(",", ":"))
    assert sized["details"]["sha256"] == sha256(canonical)
    assert ours[10]["details"] == {"changes": {"instances": 2}}
    assert "token" not in json.dumps(ours[12]["details"]).replace("expires_at", "")
    assert all(SIZED_ORQUESTRATOR not in json.dumps(e) for e in items)


def test_a_refused_change_leaves_no_line(client, admin):
    before = trail(client, admin)
    for method, path, kwargs in (
        ("post", "/services", {"json": {"name": "sized", "version": "1"}}),  # exists
        ("put", "/services/sized/1/orquestrator", {"data": "def broken(:\n"}),
        ("put", "/services/sized/1/template", {"data": "{% if %}"}),
        ("delete", "/hosts/nowhere", {}),
        ("put", "/users/nobody/quota", {"json": {"cpu": 1}}),
        ("patch", "/users/admin", {"json": {"disabled": True}}),
    ):
        response = getattr(client, method)(f"{API}{path}", headers=admin, **kwargs)
        assert response.status_code >= 400, path
    assert trail(client, admin) == before


def test_the_trail_is_filtered_and_paged(client, admin):
    for name in ("a1", "a2", "a3"):
        assert client.post(f"{API}/users", json={"name": name}, headers=admin).status_code == 201
    created = trail(client, admin, "&action=user.created")
    assert [e["target"] for e in created] == ["user:a3", "user:a2", "user:a1"]
    page = client.get(f"{API}/audit?action=user.created&per_page=2&page=2", headers=admin)
    assert page.get_json()["total"] == 3
    assert [e["target"] for e in page.get_json()["items"]] == ["user:a1"]
    assert trail(client, admin, "&actor=nobody") == []
    assert [e["action"] for e in trail(client, admin, "&target=user:a2")] == ["user.created"]


def test_the_trail_is_for_admins(client, make_user):
    alice = make_user("alice")
    response = client.get(f"{API}/audit", headers=alice)
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    bad = client.get(f"{API}/audit?page=0", headers=make_user("root", "admin"))
    assert bad.status_code == 400
