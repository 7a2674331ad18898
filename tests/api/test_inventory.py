"""Hosts and networks: admin-only CRUD, validation that lists every problem, usage."""

from __future__ import annotations

import uuid

import pytest

from tests.api.support import API, error_of, hosts, problem_fields

HOSTS = f"{API}/hosts"
NETWORKS = f"{API}/networks"

HOST = {
    "name": "node01",
    "address": "10.0.0.11",
    "cpu": 8,
    "mem": 16384,
    "disks": [{"name": "sdb", "type": "hdd", "size": 2000}, {"name": "sdc", "type": "ssd"}],
    "labels": {"rack": "r1"},
}
#: a key to leave out of the body
MISSING = object()
NETWORK = {
    "name": "lan",
    "cidr": "10.1.0.0/24",
    "gateway": "10.1.0.1",
    "bridge": "br0",
    "reserved": ["10.1.0.2-10.1.0.9"],
}


@pytest.fixture(scope="module")
def inventory(shared_client, admin_headers):
    """The module's app with one host and one network, for the read-only tests."""
    assert shared_client.post(NETWORKS, json=NETWORK, headers=admin_headers).status_code == 201
    assert shared_client.post(HOSTS, json=HOST, headers=admin_headers).status_code == 201
    return shared_client


@pytest.fixture(scope="module")
def admin_headers():
    from tests.conftest import ADMIN_TOKEN, bearer

    return bearer(ADMIN_TOKEN)


def snapshot(client, headers) -> tuple:
    return (
        client.get(HOSTS, headers=headers).get_json(),
        client.get(NETWORKS, headers=headers).get_json(),
    )


# --------------------------------------------------------------------------- admin only


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/hosts", None),
        ("POST", "/hosts", {**HOST, "name": "node99"}),
        ("GET", "/hosts/node01", None),
        ("PATCH", "/hosts/node01", {"state": "drain"}),
        ("DELETE", "/hosts/node01", None),
        ("GET", "/networks", None),
        ("POST", "/networks", {**NETWORK, "name": "wan"}),
        ("GET", "/networks/lan", None),
        ("DELETE", "/networks/lan", None),
        ("GET", "/users", None),
        ("POST", "/users", {"name": "mallory", "role": "admin"}),
    ],
)
def test_a_user_gets_403_on_every_admin_route(
    inventory, admin_headers, shared_user, method, path, body
):
    before = snapshot(inventory, admin_headers)
    response = inventory.open(f"{API}{path}", method=method, json=body, headers=shared_user())
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert snapshot(inventory, admin_headers) == before


# --------------------------------------------------------------------------- hosts


def test_add_host_is_201_with_location_and_capacity(client, admin):
    response = client.post(HOSTS, json=HOST, headers=admin)
    assert response.status_code == 201
    assert response.headers["Location"].endswith(f"{HOSTS}/node01")
    body = response.get_json()
    assert (body["name"], body["address"], body["cpu"], body["mem"]) == (
        "node01",
        "10.0.0.11",
        8,
        16384,
    )
    assert body["state"] == "up"
    assert body["networks"] == []
    assert body["labels"] == {"rack": "r1"}
    assert [(d["name"], d["type"], d["size"], d["free"]) for d in body["disks"]] == [
        ("sdb", "hdd", 2000, True),
        ("sdc", "ssd", 0, True),
    ]
    assert body["allocated"] == {"cpu": 0, "mem": 0, "disks": 0}
    assert body["free"] == {"cpu": 8, "mem": 16384, "disks": 2}
    assert [h["name"] for h in hosts(client, admin)] == ["node01"]


def test_add_host_duplicate_is_409_and_keeps_the_first(client, admin):
    assert client.post(HOSTS, json=HOST, headers=admin).status_code == 201
    again = client.post(HOSTS, json={**HOST, "cpu": 64}, headers=admin)
    assert again.status_code == 409
    assert error_of(again)["code"] == "conflict"
    assert client.get(f"{HOSTS}/node01", headers=admin).get_json()["cpu"] == 8


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"cpu": 0}, {"cpu"}),
        ({"cpu": "8"}, {"cpu"}),
        ({"cpu": True}, {"cpu"}),
        ({"cpu": 8.0}, {"cpu"}),
        ({"cpu": 2**40}, {"cpu"}),
        ({"mem": MISSING}, {"mem"}),
        ({"mem": None}, {"mem"}),
        ({"cpu": MISSING, "address": MISSING}, {"cpu", "address"}),
        ({"mem": -1}, {"mem"}),
        ({"name": "../x"}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"name": "node02\n"}, {"name"}),
        ({"address": "10.0.0.12\n"}, {"address"}),
        ({"disks": [{"name": "sdb\n"}]}, {"disks[0].name"}),
        ({"labels": {"rack\n": "r1"}}, {"labels.rack\n"}),
        ({"address": ""}, {"address"}),
        ({"address": 10}, {"address"}),
        ({"disks": [{"type": "hdd"}]}, {"disks[0].name"}),
        ({"disks": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}, {"disks[2].name"}),
        ({"disks": [{"name": "a", "size": -1}]}, {"disks[0].size"}),
        ({"disks": [{"name": "a", "type": 5}]}, {"disks[0].type"}),
        ({"disks": [{"name": "a", "speed": 5}]}, {"disks[0].speed"}),
        ({"disks": ["sdb"]}, {"disks[0]"}),
        ({"disks": "sdb"}, {"disks"}),
        ({"networks": "lan"}, {"networks"}),
        ({"networks": ["nope"]}, {"networks"}),
        ({"labels": {"rack": 1}}, {"labels.rack"}),
        ({"labels": {"rack": None}}, {"labels.rack"}),
        ({"labels": ["rack"]}, {"labels"}),
        ({"labels": {f"k{i}": "v" for i in range(65)}}, {"labels"}),
        ({"state": "broken"}, {"state"}),
        ({"role": "worker"}, {"role"}),
    ],
)
def test_bad_host_fields_are_400(inventory, admin_headers, changes, fields):
    before = snapshot(inventory, admin_headers)
    body = {k: v for k, v in {**HOST, "name": "node02", **changes}.items() if v is not MISSING}
    response = inventory.post(HOSTS, json=body, headers=admin_headers)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_input"
    assert problem_fields(response) == fields
    assert snapshot(inventory, admin_headers) == before


def test_bad_host_lists_every_problem_at_once(inventory, admin_headers):
    body = {
        "name": "node02",
        "address": "10.0.0.12",
        "cpu": 0,
        "disks": [{"type": "hdd"}, {"name": "a"}, {"name": "a"}],
        "labels": {"rack": 1},
        "state": "broken",
        "gpus": 2,
    }
    response = inventory.post(HOSTS, json=body, headers=admin_headers)
    assert response.status_code == 400
    assert problem_fields(response) == {
        "cpu",
        "mem",
        "disks[0].name",
        "disks[2].name",
        "labels.rack",
        "state",
        "gpus",
    }


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [("[1]", "application/json", 400), ("{", "application/json", 400), ("{}", "text/plain", 415)],
)
def test_host_body_must_be_a_json_object(inventory, admin_headers, raw, content_type, status):
    response = inventory.post(HOSTS, data=raw, content_type=content_type, headers=admin_headers)
    assert response.status_code == status


def test_host_detail_shows_capacity_allocated_free_and_nodes(inventory, admin_headers):
    response = inventory.get(f"{HOSTS}/node01", headers=admin_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["cpu"], body["mem"]) == (8, 16384)
    assert body["allocated"] == {"cpu": 0, "mem": 0, "disks": 0}
    assert body["free"] == {"cpu": 8, "mem": 16384, "disks": 2}
    assert body["nodes"] == []
    assert inventory.get(f"{HOSTS}/nope", headers=admin_headers).status_code == 404


def test_host_with_a_network(inventory, admin_headers):
    response = inventory.post(
        HOSTS, json={**HOST, "name": "node03", "networks": ["lan"]}, headers=admin_headers
    )
    assert response.status_code == 201
    assert response.get_json()["networks"] == ["lan"]
    assert inventory.delete(f"{HOSTS}/node03", headers=admin_headers).status_code == 204


@pytest.mark.parametrize(
    ("patch", "state", "labels"),
    [
        ({"state": "drain"}, "drain", {"rack": "r1"}),
        ({"state": "down"}, "down", {"rack": "r1"}),
        ({"state": "up"}, "up", {"rack": "r1"}),
        ({"labels": {"rack": "r9", "ssd": "yes"}}, "up", {"rack": "r9", "ssd": "yes"}),
        ({"labels": {}}, "up", {}),
        ({"state": "drain", "labels": {"a": "b"}}, "drain", {"a": "b"}),
    ],
)
def test_patch_state_and_labels(inventory, admin_headers, patch, state, labels):
    name = f"h{uuid.uuid4().hex[:12]}"
    url = f"{HOSTS}/{name}"
    added = inventory.post(HOSTS, json={**HOST, "name": name}, headers=admin_headers)
    assert added.status_code == 201
    response = inventory.patch(url, json=patch, headers=admin_headers)
    assert response.status_code == 200
    assert (response.get_json()["state"], response.get_json()["labels"]) == (state, labels)
    detail = inventory.get(url, headers=admin_headers).get_json()
    assert (detail["state"], detail["labels"]) == (state, labels)
    assert (detail["cpu"], detail["mem"], len(detail["disks"])) == (8, 16384, 2)
    assert inventory.delete(url, headers=admin_headers).status_code == 204


def test_drain_then_up_again(client, admin):
    assert client.post(HOSTS, json=HOST, headers=admin).status_code == 201
    url = f"{HOSTS}/node01"
    assert client.patch(url, json={"state": "drain"}, headers=admin).get_json()["state"] == "drain"
    assert client.patch(url, json={"state": "up"}, headers=admin).get_json()["state"] == "up"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"cpu": 64}, {"cpu"}),
        ({"name": "x"}, {"name"}),
        ({"disks": []}, {"disks"}),
        ({"state": "broken"}, {"state"}),
        ({"state": None}, {"state"}),
        ({"labels": {"a": 1}}, {"labels.a"}),
        ({"labels": "a"}, {"labels"}),
        ({"cpu": 1, "mem": 1, "state": "zzz"}, {"cpu", "mem", "state"}),
        ({}, {""}),
        ([], {""}),
    ],
)
def test_patch_of_anything_else_is_400(inventory, admin_headers, body, fields):
    before = snapshot(inventory, admin_headers)
    response = inventory.patch(f"{HOSTS}/node01", json=body, headers=admin_headers)
    assert response.status_code == 400
    assert problem_fields(response) == fields
    assert snapshot(inventory, admin_headers) == before


def test_patch_unknown_host_is_404(inventory, admin_headers):
    response = inventory.patch(f"{HOSTS}/nope", json={"state": "drain"}, headers=admin_headers)
    assert response.status_code == 404


def test_delete_host_is_204_then_404(client, admin):
    assert client.post(HOSTS, json=HOST, headers=admin).status_code == 201
    response = client.delete(f"{HOSTS}/node01", headers=admin)
    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"{HOSTS}/node01", headers=admin).status_code == 404
    assert client.delete(f"{HOSTS}/node01", headers=admin).status_code == 404
    assert client.patch(f"{HOSTS}/node01", json={"state": "up"}, headers=admin).status_code == 404
    assert hosts(client, admin) == []


# --------------------------------------------------------------------------- networks


def test_add_network_is_201_with_usage(client, admin):
    response = client.post(NETWORKS, json=NETWORK, headers=admin)
    assert response.status_code == 201
    assert response.headers["Location"].endswith(f"{NETWORKS}/lan")
    body = response.get_json()
    assert {k: body[k] for k in NETWORK} == NETWORK
    # a /24 has 254 host addresses; the gateway and 8 reserved ones are not handed out
    assert (body["size"], body["used"], body["free"]) == (254, 0, 245)
    assert body["holders"] == []
    assert client.get(f"{NETWORKS}/lan", headers=admin).get_json() == body
    assert client.get(NETWORKS, headers=admin).get_json() == {"networks": [body]}


def test_add_network_duplicate_is_409(client, admin):
    assert client.post(NETWORKS, json=NETWORK, headers=admin).status_code == 201
    again = client.post(NETWORKS, json={**NETWORK, "bridge": "br9"}, headers=admin)
    assert again.status_code == 409
    assert client.get(f"{NETWORKS}/lan", headers=admin).get_json()["bridge"] == "br0"


@pytest.mark.parametrize(
    ("body", "size", "free"),
    [
        ({"cidr": "10.2.0.0/24"}, 254, 254),
        ({"cidr": "10.2.0.0/29", "gateway": "10.2.0.1"}, 6, 5),
        ({"cidr": "10.2.0.0/29", "reserved": ["10.2.0.1", "10.2.0.5-10.2.0.6"]}, 6, 3),
        ({"cidr": "10.2.0.0/30"}, 2, 2),
        ({"cidr": "10.2.0.0/24", "reserved": ["10.2.0.0-10.2.0.255"]}, 254, 0),
        ({"cidr": "10.2.0.0/29", "reserved": ["10.2.0.0", "10.2.0.7"]}, 6, 6),
    ],
    ids=["plain", "gateway", "reserved", "smallest", "all-reserved", "reserved-outside-hosts"],
)
def test_network_size_and_free(inventory, admin_headers, body, size, free):
    name = f"n{uuid.uuid4().hex[:12]}"
    response = inventory.post(NETWORKS, json={"name": name, **body}, headers=admin_headers)
    assert response.status_code == 201, response.get_json()
    usage = inventory.get(f"{NETWORKS}/{name}", headers=admin_headers).get_json()
    assert (usage["size"], usage["used"], usage["free"]) == (size, 0, free)
    assert inventory.delete(f"{NETWORKS}/{name}", headers=admin_headers).status_code == 204


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"cidr": "10.1.0.1/24"}, {"cidr"}),
        ({"cidr": "bogus"}, {"cidr"}),
        ({"cidr": "10.1.0.0/33"}, {"cidr"}),
        ({"cidr": "10.1.0.0/31"}, {"cidr"}),
        ({"cidr": None}, {"cidr"}),
        ({"cidr": 5}, {"cidr"}),
        ({"cidr": ["10.1.0.0/24"]}, {"cidr"}),
        ({"gateway": "10.2.0.1"}, {"gateway"}),
        ({"gateway": "nope"}, {"gateway"}),
        ({"gateway": "fd00::1"}, {"gateway"}),
        ({"gateway": 167837697}, {"gateway"}),  # 10.1.0.1 as an integer
        ({"reserved": ["10.3.0.1"]}, {"reserved[0]"}),
        ({"reserved": ["10.1.0.9-10.1.0.3"]}, {"reserved[0]"}),
        ({"reserved": ["x"]}, {"reserved[0]"}),
        ({"reserved": [5]}, {"reserved[0]"}),
        ({"reserved": "10.1.0.3"}, {"reserved"}),
        ({"reserved": ["10.1.0.3", "10.3.0.1", "10.1.0.4"]}, {"reserved[1]"}),
        ({"bridge": "br 0"}, {"bridge"}),
        ({"bridge": "br0\n"}, {"bridge"}),
        ({"name": "wan\n"}, {"name"}),
        ({"name": "a/b"}, {"name"}),
        ({"vlan": 5}, {"vlan"}),
        ({"name": "", "cidr": "x", "gateway": "y", "vlan": 1}, {"name", "cidr", "gateway", "vlan"}),
    ],
)
def test_bad_network_fields_are_400(inventory, admin_headers, changes, fields):
    before = snapshot(inventory, admin_headers)
    body = {"name": "wan", "cidr": "10.1.0.0/24", **changes}
    response = inventory.post(NETWORKS, json=body, headers=admin_headers)
    assert response.status_code == 400
    assert problem_fields(response) == fields
    assert snapshot(inventory, admin_headers) == before


def test_ipv6_network(client, admin):
    body = {"name": "v6", "cidr": "fd00::/120", "gateway": "fd00::1", "reserved": ["fd00::ff"]}
    response = client.post(NETWORKS, json=body, headers=admin)
    assert response.status_code == 201
    usage = response.get_json()
    assert usage["cidr"] == "fd00::/120"
    # every address but the network address (fd00::) can be handed out
    assert (usage["size"], usage["used"], usage["free"]) == (255, 0, 253)


def test_delete_network_is_204_then_404(client, admin):
    assert client.post(NETWORKS, json=NETWORK, headers=admin).status_code == 201
    response = client.delete(f"{NETWORKS}/lan", headers=admin)
    assert response.status_code == 204
    assert client.get(f"{NETWORKS}/lan", headers=admin).status_code == 404
    assert client.delete(f"{NETWORKS}/lan", headers=admin).status_code == 404
    assert client.get(NETWORKS, headers=admin).get_json() == {"networks": []}


def test_delete_network_attached_to_a_host_is_409(client, admin):
    assert client.post(NETWORKS, json=NETWORK, headers=admin).status_code == 201
    host = {**HOST, "networks": ["lan"]}
    assert client.post(HOSTS, json=host, headers=admin).status_code == 201
    refused = client.delete(f"{NETWORKS}/lan", headers=admin)
    assert refused.status_code == 409
    assert client.get(f"{NETWORKS}/lan", headers=admin).status_code == 200
    assert client.delete(f"{HOSTS}/node01", headers=admin).status_code == 204
    assert client.delete(f"{NETWORKS}/lan", headers=admin).status_code == 204
