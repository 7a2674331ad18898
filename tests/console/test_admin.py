"""The console's admin pages: hosts (bars, agent, drain and undrain), networks, users (the
token shown once), the queue in order with each reason; none of them for a user."""

from __future__ import annotations

import re

import pytest

from bigdata_paas.operations import lifecycle
from bigdata_paas.operations.inventory import list_hosts
from bigdata_paas.operations.users import authenticate, list_users
from tests.conftest import ADMIN_TOKEN, bearer, load_example_hosts, register_example

ADMIN = bearer(ADMIN_TOKEN)
PAGES = ("/console/admin/hosts", "/console/admin/networks", "/console/admin/users",
         "/console/admin/queue")  # fmt: skip


def test_a_user_finds_no_admin_page_nor_link(app, user_console):
    for path in PAGES:
        assert user_console.get(path).status_code == 404, path
    for path in ("/console/admin/hosts/node01/drain", "/console/admin/users"):
        assert user_console.post(path, {"name": "mallory", "role": "admin"}).status_code == 404
    assert [u["name"] for u in list_users(app.extensions["paas"])] == ["admin", "alice"]
    nav = user_console.page("/console/instances")
    assert "/console/admin/" not in nav and 'id="who">alice (user)' in nav


def test_hosts_show_bars_of_used_and_free_and_drain_and_undrain(app, admin_console):
    client = app.test_client()
    load_example_hosts(client, ADMIN)
    page = admin_console.page("/console/admin/hosts")
    assert page.count("data-host=") == 4
    node01 = page.split('data-host="node01"')[1].split("</article>")[0]
    assert "cpu 0/16 used, 16 free" in node01
    assert '<meter min="0" max="16" value="0"' in node01
    assert "mem 0/65536 MB used, 65536 MB free" in node01 and "disks 0/6 used" in node01
    assert "never reported" in node01  # no agent runs in this test
    assert 'action="/console/admin/hosts/node01/drain"' in node01

    response = admin_console.post("/console/admin/hosts/node01/drain")
    assert response.status_code == 303
    rt = app.extensions["paas"]
    assert {h["name"]: h["state"] for h in list_hosts(rt)}["node01"] == "drain"
    node01 = admin_console.page("/console/admin/hosts").split('data-host="node01"')[1]
    assert 'action="/console/admin/hosts/node01/undrain"' in node01.split("</article>")[0]
    assert admin_console.post("/console/admin/hosts/node01/undrain").status_code == 303
    assert {h["name"]: h["state"] for h in list_hosts(rt)}["node01"] == "up"
    assert admin_console.post("/console/admin/hosts/node99/drain").status_code == 404
    assert admin_console.post("/console/admin/hosts/node02/drain", csrf=False).status_code == 400
    assert {h["name"]: h["state"] for h in list_hosts(rt)}["node02"] == "up"


def test_networks_show_addresses_used_and_free(app, admin_console):
    load_example_hosts(app.test_client(), ADMIN)
    page = admin_console.page("/console/admin/networks")
    assert re.search(r'<tr data-network="demo"><td>demo</td><td>127\.\d+\.\d+\.0/24</td>', page)
    assert "0 used, 253 free of 254" in page


def test_users_are_created_with_their_token_shown_once(app, admin_console):
    rt = app.extensions["paas"]
    response = admin_console.post("/console/admin/users", {"name": "carol", "role": "user"})
    assert response.status_code == 201
    page = response.get_data(as_text=True)
    token = re.search(r'<code id="new-token">([^<]+)</code>', page).group(1)
    assert authenticate(rt, token).name == "carol"
    assert response.headers["Cache-Control"] == "no-store"
    assert token not in admin_console.page("/console/admin/users")
    again = admin_console.post("/console/admin/users", {"name": "carol"})
    assert again.status_code == 409 and "already exists" in again.get_data(as_text=True)
    bad = admin_console.post("/console/admin/users", {"name": "<b>x</b>", "role": "root"})
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert "name: " in text and "role: must be one of" in text and "<b>x</b>" not in text
    assert [u["name"] for u in list_users(rt)] == ["admin", "carol"]


@pytest.fixture
def queued(app, admin_console):
    """Three gluster instances of four 16-cpu nodes on four 16-cpu hosts: the first placed,
    the two others queued in launch order, each with why."""
    client = app.test_client()
    register_example(client, ADMIN, "gluster", "3.7.11")
    load_example_hosts(client, ADMIN)
    rt = app.extensions["paas"]
    ids = []
    for _ in range(3):
        response = client.post(
            "/bigdata/api/v1/services/gluster/3.7.11", json={"size": 4, "cpu": 16}, headers=ADMIN
        )
        ids.append(response.get_json()["id"])
    for instance_id in ids:
        for step in ("prepare", "submit", "queue", "schedule"):
            lifecycle.STEP_RUNNERS[step](rt, instance_id)
    return ids


def test_the_queue_lists_waiting_instances_in_order_with_their_reason(admin_console, queued):
    page = admin_console.page("/console/admin/queue")
    assert re.findall(r'<li data-instance="(\w+)">', page) == queued[1:]
    assert page.count("no fit") >= 2, page
    detail = admin_console.page(f"/console/instances/{queued[2]}")
    assert re.search(r'id="instance-why">Waiting: no fit', detail), detail
