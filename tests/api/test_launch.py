"""Launching instances: 202 + Location + a pending instance, or a refusal that creates none."""

from __future__ import annotations

import json

import pytest

from tests.api.support import (
    API,
    TINY_OPTIONS,
    TINY_ORQUESTRATOR,
    TINY_TEMPLATE,
    add_service,
    error_of,
    instance_total,
    problem_fields,
)
from tests.conftest import EXAMPLES, register_example

CDH = EXAMPLES / "cdh" / "5.7.2"


@pytest.fixture(scope="module")
def catalog(shared_client, shared_user):
    """The module's app with the examples, a cdh without limits, and services not ready."""
    admin = shared_user(role="admin")
    options = json.loads((CDH / "options.json").read_text())
    del options["limits"]
    add_service(
        shared_client,
        admin,
        "cdh",
        "nolimits",
        template=(CDH / "service-template.json").read_bytes(),
        options=options,
        orquestrator=(CDH / "orquestrator.py").read_bytes(),
    )
    add_service(shared_client, admin, "empty", "1")
    add_service(shared_client, admin, "noscript", "1", template=TINY_TEMPLATE, options=TINY_OPTIONS)
    add_service(
        shared_client, admin, "notemplate", "1", options=TINY_OPTIONS, orquestrator="print(1)\n"
    )
    return shared_client


def test_launch_gluster_is_202_with_location_and_a_pending_instance(client, admin, make_user):
    register_example(client, admin, "gluster", "3.7.11")
    user = make_user("alice")
    response = client.post(
        f"{API}/services/gluster/3.7.11",
        data='{"size": 2, "disks": 2}',
        content_type="application/json",
        headers=user,
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "pending"
    assert body["service"] == "gluster"
    assert body["version"] == "3.7.11"
    assert body["user"] == "alice"
    assert body["options"] == {"size": 2, "disks": 2}
    assert body["name"] == f"gluster-{body['id'][:8]}"
    location = response.headers["Location"]
    assert location.endswith(f"{API}/instances/{body['id']}")
    followed = client.get(location, headers=user)
    assert followed.status_code == 200
    # the answer is the instance as it was stored, nothing more or less
    assert followed.get_json() == body
    assert body["status"] == "pending" and body["nodes"] == [] and body["merged_options"] is None
    assert instance_total(client, user) == 1


def test_launch_cdh_with_a_dotted_option(client, admin):
    register_example(client, admin, "cdh", "5.7.2")
    response = client.post(
        f"{API}/services/cdh/5.7.2",
        data='{"slaves.number": 3}',
        content_type="application/json",
        headers=admin,
    )
    assert response.status_code == 202
    assert response.get_json()["options"] == {"slaves.number": 3}
    assert response.get_json()["status"] == "pending"


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"", None),
        (b"", "application/json"),
        (b"  \n", "application/json"),
        (b"{}", "application/json"),
        (b"", "application/x-www-form-urlencoded"),
    ],
)
def test_launch_without_options_uses_the_defaults(catalog, admin, data, content_type):
    before = instance_total(catalog, admin)
    response = catalog.post(
        f"{API}/services/gluster/3.7.11", data=data, content_type=content_type, headers=admin
    )
    assert response.status_code == 202
    assert response.get_json()["options"] == {}
    assert response.get_json()["status"] == "pending"
    assert instance_total(catalog, admin) == before + 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"nope": 1}, {"nope"}),
        ({"Size": 2}, {"Size"}),
        ({"size": "2"}, {"size"}),
        ({"size": True}, {"size"}),
        ({"size": 2.5}, {"size"}),
        ({"size": 2.0}, {"size"}),
        ({"size": None}, {"size"}),
        ({"size": [2]}, {"size"}),
        ({"size": {"n": 2}}, {"size"}),
        ({"size": 0}, {"size"}),
        ({"size": -1}, {"size"}),
        ({"size": 65}, {"size"}),
        ({"size": 10**30}, {"size"}),
        ({"disk.type": "nvme"}, {"disk.type"}),
        ({"gluster.image": 5}, {"gluster.image"}),
        ({"mem": 1.5}, {"mem"}),
        (
            {"size": 0, "disks": "x", "nope": 1, "cpu": True, "disk.type": "tape"},
            {"size", "disks", "nope", "cpu", "disk.type"},
        ),
    ],
)
def test_bad_options_are_400_listing_every_problem_and_create_nothing(catalog, admin, body, fields):
    before = instance_total(catalog, admin)
    response = catalog.post(f"{API}/services/gluster/3.7.11", json=body, headers=admin)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_input"
    assert problem_fields(response) == fields
    for field in fields:
        assert field in error["message"]
    assert instance_total(catalog, admin) == before


def test_problems_come_in_the_order_the_options_were_sent(catalog, admin):
    """Unknown names pass through a set inside marshmallow; the answer (and the CLI's lines)
    must still list the problems in the body's order, in every process."""
    body = {"size": 0, **{f"zz{i}": 1 for i in range(12)}, "cpu": True}
    response = catalog.post(f"{API}/services/gluster/3.7.11", json=body, headers=admin)
    assert response.status_code == 400
    fields = [p["field"] for p in error_of(response)["details"]["problems"]]
    assert fields == list(body)


def test_unknown_option_suggests_a_close_name(catalog, admin):
    response = catalog.post(f"{API}/services/gluster/3.7.11", json={"sise": 2}, headers=admin)
    assert response.status_code == 400
    assert "did you mean 'size'" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        ("[1]", "application/json", 400),
        ('"x"', "application/json", 400),
        ("1", "application/json", 400),
        ("null", "application/json", 400),
        ("{", "application/json", 400),
        ('{"size": NaN}', "application/json", 400),
        ('{"size": Infinity}', "application/json", 400),
        ('{"size": 1e999}', "application/json", 400),
        ('{"size": ' + "1" * 5000 + "}", "application/json", 400),
        (b'{"size": 2, "disk.type": "\xff"}', "application/json", 400),
        ('{"size": 2}', "text/plain", 415),
        ("size=2", "application/x-www-form-urlencoded", 415),
    ],
)
def test_launch_body_must_be_a_json_object(catalog, admin, raw, content_type, status):
    before = instance_total(catalog, admin)
    response = catalog.post(
        f"{API}/services/gluster/3.7.11", data=raw, content_type=content_type, headers=admin
    )
    assert response.status_code == status
    assert instance_total(catalog, admin) == before


@pytest.mark.parametrize(
    ("version", "value", "status", "field"),
    [
        ("5.7.2", 1_000_000_000, 400, "slaves.number"),
        ("5.7.2", 201, 400, "slaves.number"),
        ("nolimits", 1_000_000_000, 422, None),
        ("nolimits", 10**18, 422, None),
        ("nolimits", 300, 400, "options"),
        ("nolimits", -1, 422, None),
    ],
)
def test_huge_sizes_are_a_clear_400_or_422(catalog, admin, version, value, status, field):
    before = instance_total(catalog, admin)
    response = catalog.post(
        f"{API}/services/cdh/{version}", json={"slaves.number": value}, headers=admin
    )
    assert response.status_code == status
    if field:
        assert problem_fields(response) == {field}
    else:
        assert error_of(response)["code"] in {"template_error", "invalid_spec"}
    assert instance_total(catalog, admin) == before


def test_the_largest_allowed_instance_is_accepted(catalog, admin):
    before = instance_total(catalog, admin)
    response = catalog.post(
        f"{API}/services/cdh/nolimits", json={"slaves.number": 199}, headers=admin
    )
    assert response.status_code == 202  # 199 slaves + 1 master = PAAS_MAX_NODES
    assert instance_total(catalog, admin) == before + 1


@pytest.mark.parametrize(
    ("service", "missing"),
    [
        ("empty/1", "template, options, orquestrator"),
        ("noscript/1", "orquestrator"),
        ("notemplate/1", "template"),
    ],
)
def test_a_service_that_is_not_ready_is_409(catalog, admin, service, missing):
    before = instance_total(catalog, admin)
    response = catalog.post(f"{API}/services/{service}", json={}, headers=admin)
    assert response.status_code == 409
    assert error_of(response)["code"] == "conflict"
    assert error_of(response)["message"].endswith(f"missing {missing}")
    assert instance_total(catalog, admin) == before


@pytest.mark.parametrize("service", ["nope/1", "gluster/9.9.9", "cdh/5.7.2.1"])
def test_an_unknown_service_is_404(catalog, admin, service):
    before = instance_total(catalog, admin)
    response = catalog.post(f"{API}/services/{service}", json={}, headers=admin)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert instance_total(catalog, admin) == before


def test_any_user_may_launch(catalog, shared_user):
    user = shared_user()
    response = catalog.post(f"{API}/services/cdh/5.7.2", json={}, headers=user)
    assert response.status_code == 202
    assert instance_total(catalog, user) == 1


def test_launch_renders_with_the_users_options(client, admin):
    # a template that only renders for n >= 1 with the given cpu: the options reach the render
    add_service(
        client,
        admin,
        "tiny",
        "1",
        template=TINY_TEMPLATE,
        options={**TINY_OPTIONS, "limits": {"cpu": {"min": 1}}},
        orquestrator=TINY_ORQUESTRATOR,
    )
    assert client.post(f"{API}/services/tiny/1", json={"cpu": 3}, headers=admin).status_code == 202
    zero = client.post(f"{API}/services/tiny/1", json={"n": 0}, headers=admin)
    assert zero.status_code == 422
    assert error_of(zero)["code"] == "invalid_spec"
    assert instance_total(client, admin) == 1
