"""The dry run: where an instance would go, or why it cannot; nothing is allocated."""

from __future__ import annotations

import pytest

from tests.api.support import API, error_of, hosts, instance_total, problem_fields
from tests.conftest import load_example_hosts, register_example

PLAN = f"{API}/services/gluster/3.7.11/plan"


@pytest.fixture
def gluster(client, admin):
    register_example(client, admin, "gluster", "3.7.11")
    return client


def test_without_hosts_it_does_not_fit_and_says_why(gluster, admin, make_user):
    user = make_user()
    response = gluster.post(PLAN, json={"size": 2}, headers=user)
    assert response.status_code == 200
    body = response.get_json()
    assert body["fits"] is False
    assert body["reason"]
    assert "no hosts" in body["reason"]
    assert body["shortages"]
    assert {"node", "dimension", "message"} <= set(body["shortages"][0])
    assert (body["nodes"], body["cpu"], body["mem"]) == (2, 2, 2048)
    assert "placement" not in body
    assert instance_total(gluster, admin) == 0


def test_with_hosts_it_places_every_node_and_allocates_nothing(gluster, admin, make_user):
    load_example_hosts(gluster, admin)
    before = hosts(gluster, admin)
    response = gluster.post(PLAN, json={"size": 3, "disks": 2}, headers=make_user())
    assert response.status_code == 200
    body = response.get_json()
    assert body["fits"] is True
    assert body["nodes"] == 3
    names = {h["name"] for h in before}
    placement = {p["node"]: p for p in body["placement"]}
    assert set(placement) == {"gluster0", "gluster1", "gluster2"}
    for node in placement.values():
        assert node["host"] in names
        assert len(node["disks"]) == 2
    # anti-affinity: one gluster server per host while hosts suffice
    assert len({p["host"] for p in placement.values()}) == 3

    after = hosts(gluster, admin)
    assert after == before
    for host in after:
        assert host["allocated"] == {"cpu": 0, "mem": 0, "disks": 0}
        assert all(disk["free"] for disk in host["disks"])
    assert instance_total(gluster, admin) == 0
    detail = gluster.get(f"{API}/hosts/{after[0]['name']}", headers=admin).get_json()
    assert detail["nodes"] == []


def test_with_every_host_drained_it_does_not_fit(gluster, admin):
    load_example_hosts(gluster, admin)
    for host in hosts(gluster, admin):
        patched = gluster.patch(
            f"{API}/hosts/{host['name']}", json={"state": "drain"}, headers=admin
        )
        assert patched.status_code == 200
    body = gluster.post(PLAN, json={}, headers=admin).get_json()
    assert body["fits"] is False
    assert body["reason"]


def test_too_big_for_the_inventory_names_the_short_dimension(gluster, admin):
    load_example_hosts(gluster, admin)
    body = gluster.post(PLAN, json={"mem": 262144}, headers=admin).get_json()
    assert body["fits"] is False
    assert {s["dimension"] for s in body["shortages"]} == {"mem"}


@pytest.mark.parametrize(
    ("body", "status", "fields"),
    [
        ({"size": "3"}, 400, {"size"}),
        ({"size": 0, "nope": 1}, 400, {"size", "nope"}),
        ([3], 400, {""}),
    ],
)
def test_bad_options_are_400(shared_client, admin, body, status, fields):
    response = shared_client.post(PLAN, json=body, headers=admin)
    assert response.status_code == status
    assert problem_fields(response) == fields
    assert instance_total(shared_client, admin) == 0


@pytest.mark.parametrize(
    ("path", "status"),
    [("services/nope/1/plan", 404), ("services/gluster/0.0/plan", 404)],
)
def test_plan_of_an_unknown_service_is_404(shared_client, admin, path, status):
    response = shared_client.post(f"{API}/{path}", json={}, headers=admin)
    assert response.status_code == status
    assert error_of(response)["code"] == "not_found"


def test_plan_of_a_service_that_is_not_ready_is_409(shared_client, admin):
    response = shared_client.post(
        f"{API}/services", json={"name": "half", "version": "1"}, headers=admin
    )
    assert response.status_code == 201
    refused = shared_client.post(f"{API}/services/half/1/plan", json={}, headers=admin)
    assert refused.status_code == 409
    assert instance_total(shared_client, admin) == 0
