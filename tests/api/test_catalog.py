"""The service catalog: register, describe, delete, and the template/options/orquestrator parts."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.api.support import (
    API,
    TINY_OPTIONS,
    TINY_TEMPLATE,
    add_service,
    error_of,
    launch,
    problem_fields,
    set_status,
)
from tests.conftest import EXAMPLES, register_example

SERVICES = f"{API}/services"
GLUSTER = EXAMPLES / "gluster" / "3.7.11"
CDH = EXAMPLES / "cdh" / "5.7.2"


def catalog(client, headers) -> dict[str, list[str]]:
    response = client.get(SERVICES, headers=headers)
    assert response.status_code == 200
    return {entry["name"]: entry["versions"] for entry in response.get_json()["services"]}


def put(client, headers, path: str, data, content_type: str | None = "application/json"):
    return client.put(f"{SERVICES}/{path}", data=data, content_type=content_type, headers=headers)


def gluster_copy(client, headers, name: str) -> None:
    """Register the gluster example's parts as ``name/1``."""
    add_service(
        client,
        headers,
        name,
        "1",
        template=(GLUSTER / "service-template.json").read_bytes(),
        options=json.loads((GLUSTER / "options.json").read_text()),
        orquestrator=(GLUSTER / "orquestrator.py").read_bytes(),
    )


@pytest.fixture
def svc() -> str:
    """A service name of its own, for tests on the module's app that touch only that service."""
    return f"s{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------- POST /services


def test_register_answers_201_with_location_and_the_service(client, admin):
    body = json.loads((GLUSTER / "service.json").read_text())
    response = client.post(SERVICES, json=body, headers=admin)
    assert response.status_code == 201
    assert response.headers["Location"].endswith(f"{SERVICES}/gluster/3.7.11")
    created = response.get_json()
    assert created["name"] == "gluster"
    assert created["version"] == "3.7.11"
    assert created["description"] == "GlusterFS parallel filesystem cluster"
    assert created["ready"] is False
    assert created["missing"] == ["template", "options", "orquestrator"]
    followed = client.get(response.headers["Location"], headers=admin)
    assert followed.status_code == 200
    assert followed.get_json()["name"] == "gluster"


def test_register_accepts_a_body_sent_without_content_type(client, admin):
    # curl -d without -H sends form encoding; no header at all is taken as JSON
    response = client.post(SERVICES, data='{"name": "x", "version": "1"}', headers=admin)
    assert response.status_code == 201
    assert catalog(client, admin) == {"x": ["1"]}


def test_register_duplicate_is_409_and_overwrites_nothing(client, admin):
    first = {"name": "gluster", "version": "3.7.11", "description": "first"}
    assert client.post(SERVICES, json=first, headers=admin).status_code == 201
    template = (GLUSTER / "service-template.json").read_bytes()
    assert put(client, admin, "gluster/3.7.11/template", template).status_code == 200

    again = client.post(SERVICES, json={**first, "description": "second"}, headers=admin)
    assert again.status_code == 409
    assert error_of(again)["code"] == "conflict"
    detail = client.get(f"{SERVICES}/gluster/3.7.11", headers=admin).get_json()
    assert detail["description"] == "first"
    assert detail["template"] is True
    assert client.get(f"{SERVICES}/gluster/3.7.11/template", headers=admin).data == template
    assert catalog(client, admin) == {"gluster": ["3.7.11"]}


@pytest.mark.parametrize(
    ("name", "version"),
    [("a" * 64, "1"), ("x", "1" * 64), ("cdh", "5.7.2-rc1+build_2"), ("My_Service-2", "v2")],
)
def test_register_accepts_names_at_the_limits(client, admin, name, version):
    response = client.post(SERVICES, json={"name": name, "version": version}, headers=admin)
    assert response.status_code == 201, response.get_json()
    assert catalog(client, admin) == {name: [version]}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "../x", "version": "1"}, {"name"}),
        ({"name": "a/b", "version": "1"}, {"name"}),
        ({"name": "", "version": "1"}, {"name"}),
        ({"name": "a" * 65, "version": "1"}, {"name"}),
        ({"name": "a\x00b", "version": "1"}, {"name"}),
        ({"name": "a\n", "version": "1"}, {"name"}),
        ({"name": "-a", "version": "1"}, {"name"}),
        ({"name": "a b", "version": "1"}, {"name"}),
        ({"name": 5, "version": "1"}, {"name"}),
        ({"name": None, "version": "1"}, {"name"}),
        ({"name": ["a"], "version": "1"}, {"name"}),
        ({"version": "1"}, {"name"}),
        ({"name": "a", "version": "../x"}, {"version"}),
        ({"name": "a", "version": "a/b"}, {"version"}),
        ({"name": "a", "version": ""}, {"version"}),
        ({"name": "a", "version": "1" * 65}, {"version"}),
        ({"name": "a", "version": "1\x00"}, {"version"}),
        ({"name": "a", "version": "1\n"}, {"version"}),
        ({"name": "a", "version": "1..2"}, {"version"}),
        ({"name": "a", "version": 1.0}, {"version"}),
        ({"name": "a"}, {"version"}),
        ({"name": "a", "version": "1", "description": 5}, {"description"}),
        ({"name": "a", "version": "1", "description": "d" * 2001}, {"description"}),
        ({"name": "a", "version": "1", "template": "x"}, {"template"}),
        ({"name": "../x", "version": "", "extra": 1}, {"name", "version", "extra"}),
    ],
)
def test_register_bad_fields_are_400_listing_each(shared_client, admin, body, fields):
    before = catalog(shared_client, admin)
    response = shared_client.post(SERVICES, json=body, headers=admin)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_input"
    assert problem_fields(response) == fields
    assert catalog(shared_client, admin) == before


@pytest.mark.parametrize(
    "raw",
    [
        "[1]",
        '"gluster"',
        "null",
        "42",
        "{bad json",
        '{"name": "a", "version": "1"',
        '{"name": NaN, "version": "1"}',
        '{"name": "a", "version": "1", "description": Infinity}',
        "",
        "[" * 100_000,
        b'{"name": "\xff", "version": "1"}',
    ],
    ids=[
        "list",
        "string",
        "null",
        "number",
        "malformed",
        "truncated",
        "nan",
        "infinity",
        "empty",
        "deep",
        "not-utf8",
    ],
)
def test_register_non_object_or_bad_json_is_400(shared_client, admin, raw):
    before = catalog(shared_client, admin)
    response = shared_client.post(
        SERVICES, data=raw, content_type="application/json", headers=admin
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_input"
    assert catalog(shared_client, admin) == before


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_register_non_json_content_type_is_415(shared_client, admin, content_type):
    before = catalog(shared_client, admin)
    response = shared_client.post(
        SERVICES,
        data='{"name": "typed", "version": "1"}',
        content_type=content_type,
        headers=admin,
    )
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert catalog(shared_client, admin) == before


def test_register_is_admin_only(client, make_user):
    response = client.post(SERVICES, json={"name": "a", "version": "1"}, headers=make_user())
    assert response.status_code == 403
    assert catalog(client, make_user()) == {}


# --------------------------------------------------------------------------- GET, DELETE


def test_catalog_lists_names_with_their_versions(client, admin, make_user):
    for name, version in (("gluster", "3.7.11"), ("gluster", "3.8.0"), ("cdh", "5.7.2")):
        assert (
            client.post(
                SERVICES, json={"name": name, "version": version}, headers=admin
            ).status_code
            == 201
        )
    assert catalog(client, make_user()) == {"gluster": ["3.7.11", "3.8.0"], "cdh": ["5.7.2"]}
    versions = client.get(f"{SERVICES}/gluster", headers=make_user())
    assert versions.status_code == 200
    body = versions.get_json()
    assert body["name"] == "gluster"
    assert [v["version"] for v in body["versions"]] == ["3.7.11", "3.8.0"]
    assert all(v["ready"] is False for v in body["versions"])


@pytest.mark.parametrize("path", ["nope", "nope/1", "gluster/9.9", "nope/1/template"])
def test_unknown_service_or_version_is_404(shared_client, admin, path):
    response = shared_client.get(f"{SERVICES}/{path}", headers=admin)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_detail_shows_which_parts_are_set_and_ready(client, admin, make_user):
    add_service(client, admin, "cdh", "5.7.2")
    url = f"{SERVICES}/cdh/5.7.2"
    steps = [
        ("template", CDH / "service-template.json", ["options", "orquestrator"]),
        ("options", CDH / "options.json", ["orquestrator"]),
        ("orquestrator", CDH / "orquestrator.py", []),
    ]
    assert client.get(url, headers=admin).get_json()["missing"] == [
        "template",
        "options",
        "orquestrator",
    ]
    for part, path, missing in steps:
        assert put(client, admin, f"cdh/5.7.2/{part}", path.read_bytes()).status_code == 200
        detail = client.get(url, headers=make_user()).get_json()
        assert detail[part] is True
        assert detail["missing"] == missing
        assert detail["ready"] is (not missing)


def test_delete_is_204_then_404(client, admin):
    register_example(client, admin, "gluster", "3.7.11")
    url = f"{SERVICES}/gluster/3.7.11"
    response = client.delete(url, headers=admin)
    assert response.status_code == 204
    assert response.data == b""
    for path in ("", "/template", "/options", "/orquestrator"):
        assert client.get(url + path, headers=admin).status_code == 404
    assert client.get(f"{SERVICES}/gluster", headers=admin).status_code == 404
    assert catalog(client, admin) == {}
    assert client.delete(url, headers=admin).status_code == 404


def test_delete_is_admin_only(client, admin, make_user):
    register_example(client, admin, "gluster", "3.7.11")
    response = client.delete(f"{SERVICES}/gluster/3.7.11", headers=make_user())
    assert response.status_code == 403
    assert catalog(client, admin) == {"gluster": ["3.7.11"]}


def test_delete_is_refused_while_a_live_instance_uses_it(app, client, admin, make_user):
    register_example(client, admin, "gluster", "3.7.11")
    user = make_user()
    instance = launch(client, user, "gluster", "3.7.11")
    url = f"{SERVICES}/gluster/3.7.11"

    refused = client.delete(url, headers=admin)
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "conflict"
    assert client.get(url, headers=admin).get_json()["ready"] is True

    # destroying still holds allocations: still in use
    assert client.delete(f"{API}/instances/{instance['id']}", headers=user).status_code == 202
    assert client.delete(url, headers=admin).status_code == 409

    set_status(app, instance["id"], "destroyed")
    assert client.delete(url, headers=admin).status_code == 204
    # the instance stays, for history, with the service's name and version
    kept = client.get(f"{API}/instances/{instance['id']}", headers=user)
    assert kept.status_code == 200
    assert (kept.get_json()["service"], kept.get_json()["version"]) == ("gluster", "3.7.11")


# --------------------------------------------------------------------------- template

#: a Jinja template that is not JSON, with CRLF, trailing spaces, tabs and non-ASCII text
RAW_TEMPLATE = (
    '{% set comment = "modèle — ü" %}\r\n'
    '{"nodes": {"a": {"cpu": 1, "mem": 128}},   \r\n'
    '\t"services": {}}\n\n'
).encode()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/plain",
        "application/octet-stream",
        "application/x-www-form-urlencoded",
        None,
    ],
)
def test_template_is_taken_raw_and_returned_byte_identical(shared_client, admin, svc, content_type):
    add_service(shared_client, admin, svc, "1")
    response = put(shared_client, admin, f"{svc}/1/template", RAW_TEMPLATE, content_type)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["template"] is True
    assert response.get_json()["template_format"] == "json"
    got = shared_client.get(f"{SERVICES}/{svc}/1/template", headers=admin)
    assert got.status_code == 200
    assert got.data == RAW_TEMPLATE
    assert got.mimetype == "text/plain"


def test_template_get_is_open_to_users_and_put_is_admin_only(
    shared_client, admin, svc, shared_user
):
    add_service(shared_client, admin, svc, "1", template=TINY_TEMPLATE)
    user = shared_user()
    assert (
        shared_client.get(f"{SERVICES}/{svc}/1/template", headers=user).data
        == TINY_TEMPLATE.encode()
    )
    refused = put(shared_client, user, f"{svc}/1/template", b'{"nodes": {}}')
    assert refused.status_code == 403
    assert (
        shared_client.get(f"{SERVICES}/{svc}/1/template", headers=user).data
        == TINY_TEMPLATE.encode()
    )


def test_template_sent_as_yaml_is_stored_as_yaml(shared_client, admin, svc):
    add_service(shared_client, admin, svc, "1")
    text = b"nodes:\n  a: {cpu: 1, mem: 128}\nservices: {}\n"
    response = put(shared_client, admin, f"{svc}/1/template", text, "application/yaml")
    assert response.status_code == 200
    assert response.get_json()["template_format"] == "yaml"
    got = shared_client.get(f"{SERVICES}/{svc}/1/template", headers=admin)
    assert got.data == text
    assert got.mimetype == "application/yaml"


@pytest.mark.parametrize(
    ("template", "line"),
    [
        ("{{ }", 1),
        ("{\n\n{% for x in %}\n}", 3),
        ('{\n  "a": {{ 1 + }}\n}', 2),
        ("a\nb\n{% if x %}\nc\n", 3),
        ("{% endfor %}", 1),
    ],
)
def test_template_syntax_error_is_422_naming_the_line(shared_client, admin, svc, template, line):
    add_service(shared_client, admin, svc, "1", template=TINY_TEMPLATE)
    response = put(shared_client, admin, f"{svc}/1/template", template)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "template_error"
    assert error["details"]["line"] == line
    assert error["message"].startswith(f"line {line}:")
    assert (
        shared_client.get(f"{SERVICES}/{svc}/1/template", headers=admin).data
        == TINY_TEMPLATE.encode()
    )


@pytest.mark.parametrize(
    ("data", "status"),
    [(b"", 400), (b"  \n\t", 400), (b"\xff\xfe{}", 400), (b"{}\x00", 400)],
    ids=["empty", "blank", "not-utf8", "nul"],
)
def test_template_empty_or_not_text_is_400(shared_client, admin, svc, data, status):
    add_service(shared_client, admin, svc, "1")
    response = put(shared_client, admin, f"{svc}/1/template", data)
    assert response.status_code == status
    assert problem_fields(response) == {"template"}
    assert shared_client.get(f"{SERVICES}/{svc}/1", headers=admin).get_json()["template"] is False


@pytest.mark.parametrize(
    ("template", "code"),
    [
        ("{\"nodes\": {{ opts['nope'] }} }", "template_error"),
        ('{"nodes": {"a": {"cpu": 1, "mem": 128}}', "template_error"),
        ('{"nodes": {}, "services": {}}', "invalid_spec"),
        ('{"nodes": {"a": {"cpu": "x", "mem": 128}}, "services": {}}', "invalid_spec"),
        (
            '{"nodes": { {% for i in range(201) %}"n{{ i }}": {"cpu": 1, "mem": 1}'
            '{% if not loop.last %},{% endif %}{% endfor %}}, "services": {}}',
            "invalid_spec",
        ),
        ("{% for i in range(10**9) %}x{% endfor %}", "template_error"),
    ],
    ids=["undefined", "not-json", "no-nodes", "bad-cpu", "too-many-nodes", "huge-loop"],
)
def test_template_that_fails_with_the_defaults_is_422_and_the_old_stays(
    shared_client, admin, svc, template, code
):
    gluster_copy(shared_client, admin, svc)
    old = (GLUSTER / "service-template.json").read_bytes()
    response = put(shared_client, admin, f"{svc}/1/template", template)
    assert response.status_code == 422
    assert error_of(response)["code"] == code
    assert shared_client.get(f"{SERVICES}/{svc}/1/template", headers=admin).data == old


# --------------------------------------------------------------------------- options


def test_options_put_and_get(client, admin, make_user):
    add_service(client, admin, "gluster", "3.7.11")
    doc = json.loads((GLUSTER / "options.json").read_text())
    response = put(client, admin, "gluster/3.7.11/options", json.dumps(doc))
    assert response.status_code == 200
    assert response.get_json()["options"] is True
    got = client.get(f"{SERVICES}/gluster/3.7.11/options", headers=make_user())
    assert got.status_code == 200
    assert got.get_json() == doc


def test_options_are_normalized_with_every_section(shared_client, admin, svc):
    add_service(shared_client, admin, svc, "1", options={"required": {"n": 1}})
    got = shared_client.get(f"{SERVICES}/{svc}/1/options", headers=admin).get_json()
    assert got == {
        "required": {"n": 1},
        "optional": {},
        "advanced": {},
        "descriptions": {},
        "limits": {},
    }


def test_options_put_is_admin_only(shared_client, admin, svc, shared_user):
    add_service(shared_client, admin, svc, "1")
    response = put(shared_client, shared_user(), f"{svc}/1/options", json.dumps(TINY_OPTIONS))
    assert response.status_code == 403
    assert shared_client.get(f"{SERVICES}/{svc}/1/options", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("doc", "fields"),
    [
        ({"required": {"size": []}}, {"required.size"}),
        ({"required": {"size": None}}, {"required.size"}),
        ({"zzz": {}}, {"zzz"}),
        ({"required": "x"}, {"required"}),
        ({"required": {"bad name": 1}}, {"required.bad name"}),
        ({"required": {"a": 1}, "optional": {"a": 2}}, {"optional.a"}),
        ({"required": {"a": 1, "a.b": 2}}, {"required.a.b"}),
        ({"required": {"a": 1}, "descriptions": {"a": 5}}, {"descriptions.a"}),
        ({"required": {"a": 1}, "limits": {"a": {"min": 5}}}, {"limits.a"}),
        ({"required": {"a": 1}, "limits": {"a": {"min": 3, "max": 2}}}, {"limits.a"}),
        ({"required": {"a": "s"}, "limits": {"a": {"min": 1}}}, {"limits.a.min"}),
        ({"required": {"a": 1}, "limits": {"a": {"step": 1}}}, {"limits.a.step"}),
        ({"required": {"a": 1}, "limits": {"b": {}}}, {"limits.b"}),
        (
            {
                "required": {"size": [], "ok": 1},
                "extra": {},
                "descriptions": {"nope": "x"},
                "limits": {"ok": {"max": 0}},
            },
            {"required.size", "extra", "limits.ok"},
        ),
    ],
)
def test_options_validation_errors_are_400_listing_every_problem(shared_client, admin, doc, fields):
    url = f"{SERVICES}/gluster/3.7.11/options"
    before = shared_client.get(url, headers=admin).get_json()
    response = shared_client.put(url, json=doc, headers=admin)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_input"
    assert problem_fields(response) == fields
    assert shared_client.get(url, headers=admin).get_json() == before


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        ("[1]", "application/json", 400),
        ('"x"', "application/json", 400),
        ("{", "application/json", 400),
        ('{"required": {"n": NaN}}', "application/json", 400),
        ("", "application/json", 400),
        ('{"required": {"n": 1}}', "text/plain", 415),
    ],
)
def test_options_body_must_be_a_json_object(shared_client, admin, raw, content_type, status):
    url = f"{SERVICES}/gluster/3.7.11/options"
    before = shared_client.get(url, headers=admin).get_json()
    response = shared_client.put(url, data=raw, content_type=content_type, headers=admin)
    assert response.status_code == status
    assert shared_client.get(url, headers=admin).get_json() == before


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/x-www-form-urlencoded", None]
)
def test_options_are_read_as_json_as_the_original_scripts_sent_them(
    shared_client, admin, svc, content_type
):
    """``curl --data-binary @options.json`` without -H sends a form type; no type is JSON too."""
    add_service(shared_client, admin, svc, "1")
    url = f"{SERVICES}/{svc}/1/options"
    response = shared_client.put(
        url, data=json.dumps(TINY_OPTIONS), content_type=content_type, headers=admin
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["options"] is True
    assert response.get_json()["warnings"] == []
    assert shared_client.get(url, headers=admin).get_json()["required"] == {"n": 1}


def test_a_stale_description_is_stored_without_and_answered_as_a_warning(shared_client, admin, svc):
    add_service(shared_client, admin, svc, "1", template=TINY_TEMPLATE)
    doc = {**TINY_OPTIONS, "descriptions": {**TINY_OPTIONS["descriptions"], "disks": "gone"}}
    url = f"{SERVICES}/{svc}/1/options"
    response = shared_client.put(url, json=doc, headers=admin)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["ready"] is False  # no orquestrator yet
    assert response.get_json()["warnings"] == [
        {"field": "descriptions.disks", "message": "describes an undeclared option; left out"}
    ]
    stored = shared_client.get(url, headers=admin).get_json()
    assert stored["descriptions"] == TINY_OPTIONS["descriptions"]


GLUSTER_REST = {
    "optional": {"cpu": 1, "mem": 1024, "disk.type": "hdd"},
    "advanced": {"volume.replica": 2, "gluster.image": "gluster/gluster-centos:3.7.11"},
}


@pytest.mark.parametrize(
    "doc",
    [
        {**GLUSTER_REST, "required": {"disks": 2}},
        {**GLUSTER_REST, "required": {"size": "two", "disks": 2}},
        {**GLUSTER_REST, "required": {"size": 0, "disks": 2}},
    ],
    ids=["option-removed", "type-changed", "zero-nodes"],
)
def test_options_with_which_the_template_no_longer_renders_are_422(shared_client, admin, svc, doc):
    gluster_copy(shared_client, admin, svc)
    url = f"{SERVICES}/{svc}/1/options"
    before = shared_client.get(url, headers=admin).get_json()
    response = shared_client.put(url, json=doc, headers=admin)
    assert response.status_code == 422
    assert error_of(response)["code"] == "template_error"
    assert "does not render with these defaults" in error_of(response)["message"]
    if doc["required"] == {"disks": 2}:  # a render error knows its line, and keeps it
        line = error_of(response)["details"]["line"]
        assert isinstance(line, int) and line > 0
        assert error_of(response)["message"].count(f"line {line}:") == 1
    assert shared_client.get(url, headers=admin).get_json() == before


# --------------------------------------------------------------------------- orquestrator

SCRIPT = b"#!/usr/bin/env python3\nimport sys\nprint('hello', sys.argv[1])  # \xc3\xa9\r\n"


@pytest.mark.parametrize(
    ("put_spelling", "get_spelling"),
    [
        ("orquestrator", "orquestrator"),
        ("orquestrator", "orchestrator"),
        ("orchestrator", "orquestrator"),
        ("orchestrator", "orchestrator"),
    ],
)
def test_orquestrator_and_its_alias_store_the_same_script(
    shared_client, admin, svc, put_spelling, get_spelling
):
    add_service(shared_client, admin, svc, "1")
    response = put(shared_client, admin, f"{svc}/1/{put_spelling}", SCRIPT)
    assert response.status_code == 200
    assert response.get_json()["orquestrator"] is True
    got = shared_client.get(f"{SERVICES}/{svc}/1/{get_spelling}", headers=admin)
    assert got.status_code == 200
    assert got.data == SCRIPT


@pytest.mark.parametrize("spelling", ["orquestrator", "orchestrator"])
def test_orquestrator_is_admin_only_even_to_read(shared_client, admin, svc, shared_user, spelling):
    add_service(shared_client, admin, svc, "1", orquestrator=SCRIPT)
    user = shared_user()
    got = shared_client.get(f"{SERVICES}/{svc}/1/{spelling}", headers=user)
    assert got.status_code == 403
    assert error_of(got)["code"] == "forbidden"
    assert b"hello" not in got.data
    assert put(shared_client, user, f"{svc}/1/{spelling}", b"print(2)\n").status_code == 403
    assert shared_client.get(f"{SERVICES}/{svc}/1/{spelling}", headers=admin).data == SCRIPT


@pytest.mark.parametrize(
    ("script", "line"),
    [
        ("def f(:\n  pass\n", 1),
        ("x = 1\n\nif x\n    pass\n", 3),
        ("x = 1\ny = (\n", 2),
        ("\tx = 1\n  y = 2\n", 1),
        ("#!/usr/bin/env python3\nprint(\n", 2),
    ],
)
def test_orquestrator_python_syntax_error_is_422_with_the_line(
    shared_client, admin, svc, script, line
):
    add_service(shared_client, admin, svc, "1", orquestrator=SCRIPT)
    response = put(shared_client, admin, f"{svc}/1/orquestrator", script)
    assert response.status_code == 422
    assert error_of(response)["details"]["line"] == line
    assert f"line {line}" in error_of(response)["message"]
    assert shared_client.get(f"{SERVICES}/{svc}/1/orquestrator", headers=admin).data == SCRIPT


def test_orquestrator_in_another_language_is_not_parsed_as_python(shared_client, admin, svc):
    add_service(shared_client, admin, svc, "1")
    script = b"#!/bin/sh\necho start (\n"
    assert put(shared_client, admin, f"{svc}/1/orquestrator", script).status_code == 200
    assert shared_client.get(f"{SERVICES}/{svc}/1/orquestrator", headers=admin).data == script


@pytest.mark.parametrize(
    "data",
    [b"", b" \n\n ", b"\xff\xfeprint(1)", b"print(1)\x00"],
    ids=["empty", "blank", "not-utf8", "nul"],
)
def test_orquestrator_empty_or_not_text_is_400(shared_client, admin, svc, data):
    add_service(shared_client, admin, svc, "1", orquestrator=SCRIPT)
    response = put(shared_client, admin, f"{svc}/1/orquestrator", data)
    assert response.status_code == 400
    assert problem_fields(response) == {"orquestrator"}
    assert shared_client.get(f"{SERVICES}/{svc}/1/orquestrator", headers=admin).data == SCRIPT


@pytest.mark.parametrize("part", ["template", "options", "orquestrator", "orchestrator"])
def test_parts_of_an_unknown_service_are_404(shared_client, admin, part):
    response = put(shared_client, admin, f"nope/1/{part}", b'{"required": {}}')
    assert response.status_code == 404
    assert shared_client.get(f"{SERVICES}/nope/1/{part}", headers=admin).status_code == 404


def test_parts_not_set_yet_are_404(shared_client, admin, svc):
    add_service(shared_client, admin, svc, "1", template=TINY_TEMPLATE)
    for part in ("options", "orquestrator", "orchestrator"):
        response = shared_client.get(f"{SERVICES}/{svc}/1/{part}", headers=admin)
        assert response.status_code == 404
        assert "no " in error_of(response)["message"]
    assert shared_client.get(f"{SERVICES}/{svc}/1/template", headers=admin).status_code == 200
    add_service(shared_client, admin, svc + "u", "1", options=TINY_OPTIONS)
    assert shared_client.get(f"{SERVICES}/{svc}u/1/template", headers=admin).status_code == 404
