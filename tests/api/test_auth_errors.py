"""Authentication on every route, the docs' Basic challenge, and one JSON error envelope."""

from __future__ import annotations

import base64
import re
import tempfile
from pathlib import Path

import pytest

import config
from bigdata_paas import create_app
from tests.api.support import API, error_of, launch
from tests.conftest import ADMIN_TOKEN, base_env, bearer, load_example_hosts

pytestmark = pytest.mark.security

HEALTH = f"{API}/health"
#: what answers without a token: the health check and the probes
PUBLIC = {HEALTH, f"{API}/livez", f"{API}/readyz"}
#: what a browser opens (a Basic challenge), and which the API document does not list
DOCS = {f"{API}/docs", f"{API}/openapi.json", f"{API}/docs/assets/<path:filename>"}


def url_map_routes() -> list[tuple[str, str, str]]:
    """(method, rule, endpoint) of every route of the app, read from its URL map."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(config.TestConfig.from_env(base_env(Path(tmp) / "var")))
        routes = sorted(
            (method, rule.rule, rule.endpoint)
            for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}
            # the web console signs its users in with a session (tests/console)
            if not rule.endpoint.startswith("console.")
        )
        app.extensions["paas"].db.dispose()
    return routes


ROUTES = url_map_routes()


def basic(token: str, user: str = "x") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}


@pytest.fixture(scope="module")
def world(shared_client):
    """The module's app with the examples, the example hosts, a network and an instance."""
    admin = bearer(ADMIN_TOKEN)
    load_example_hosts(shared_client, admin)
    network = {"name": "lan", "cidr": "10.1.0.0/24"}
    assert shared_client.post(f"{API}/networks", json=network, headers=admin).status_code == 201
    instance = launch(shared_client, admin, "gluster", "3.7.11")
    return {"client": shared_client, "instance": instance["id"]}


def fill(rule: str, instance_id: str) -> str:
    """Fill a rule's parameters with existing resources, so a missing check would show."""
    names = {"services": "gluster", "hosts": "node01", "networks": "lan"}
    kind = rule.removeprefix(API + "/").split("/")[0]
    path = rule.replace("<version>", "3.7.11").replace("<instance_id>", instance_id)
    path = path.replace("<name>", names.get(kind, "dummy"))
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", "dummy", path)


def state(client) -> list:
    admin = bearer(ADMIN_TOKEN)
    return [
        client.get(f"{API}/{path}", headers=admin).get_json()
        for path in ("services", "hosts", "networks", "users", "instances")
    ]


def test_the_url_map_was_read():
    endpoints = {endpoint for _method, _rule, endpoint in ROUTES}
    assert len(ROUTES) >= 30
    assert {"health.health", "services.launch", "instances.destroy", "users.create_user"} <= (
        endpoints
    )
    assert all(rule.startswith(API + "/") for _method, rule, _endpoint in ROUTES)


@pytest.mark.parametrize(
    ("method", "rule", "endpoint"), ROUTES, ids=[f"{m} {r}" for m, r, _e in ROUTES]
)
def test_anonymous_requests_are_401_everywhere_but_health(world, method, rule, endpoint):
    client = world["client"]
    path = fill(rule, world["instance"])
    changes = method != "GET"
    before = state(client) if changes else None
    response = client.open(path, method=method, json={"state": "drain", "size": 1})
    if rule in PUBLIC:
        assert response.status_code == 200
        return
    assert response.status_code == 401, (method, path)
    assert error_of(response)["code"] == "unauthorized"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Basic " if rule in DOCS else "Bearer ")
    assert 'realm="bigdata-paas"' in challenge
    if changes:
        assert state(client) == before


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer nope",
        "Bearer ",
        "Bearer",
        "bearer " + ADMIN_TOKEN[:-1],
        "Bearer " + ADMIN_TOKEN + "x",
        "Bearer " + "x" * 300,
        "Token " + ADMIN_TOKEN,
        ADMIN_TOKEN,
        "Basic !!!not-base64",
        "Basic " + base64.b64encode(b"admin:").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
    ],
)
def test_a_bad_token_is_401(world, authorization):
    client = world["client"]
    before = state(client)
    headers = {"Authorization": authorization}
    for method, path in (
        ("GET", f"{API}/instances"),
        ("POST", f"{API}/services"),
        ("POST", f"{API}/services/gluster/3.7.11"),
    ):
        response = client.open(
            path, method=method, json={"name": "x", "version": "1"}, headers=headers
        )
        assert response.status_code == 401
        assert error_of(response)["message"] == "missing or invalid bearer token"
    assert state(client) == before


def test_the_bearer_scheme_is_case_insensitive_and_basic_works_everywhere(world):
    client = world["client"]
    for headers in (
        {"Authorization": "bearer " + ADMIN_TOKEN},
        {"Authorization": "BEARER  " + ADMIN_TOKEN},
        basic(ADMIN_TOKEN),
        basic(ADMIN_TOKEN, user=""),
    ):
        assert client.get(f"{API}/hosts", headers=headers).status_code == 200


# --------------------------------------------------------------------------- health


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer " + ADMIN_TOKEN}],
    ids=["anonymous", "bad-token", "admin"],
)
def test_health_answers_without_auth_and_shows_no_secret(shared_app, headers):
    client = shared_app.test_client()
    response = client.get(HEALTH, headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "web": "ok", "database": "ok", "broker": "ok"}
    text = response.get_data(as_text=True)
    settings = shared_app.extensions["paas"].config
    secrets = (ADMIN_TOKEN, settings.DATA_DIR, str(settings.data_path), "sqlite", "filesystem:")
    for secret in secrets:
        assert secret not in text


# --------------------------------------------------------------------------- docs


@pytest.mark.parametrize("path", sorted(DOCS))
def test_docs_challenge_for_basic_and_accept_the_token_as_password(shared_app, path):
    client = shared_app.test_client()
    path = path.replace("<path:filename>", "swagger-ui.css")
    for headers in ({}, basic("wrong"), {"Authorization": "Bearer wrong"}):
        refused = client.get(path, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == 'Basic realm="bigdata-paas"'
        assert refused.get_json()["error"]["code"] == "unauthorized"
    for headers in (basic(ADMIN_TOKEN), basic(ADMIN_TOKEN, user="anyone"), bearer(ADMIN_TOKEN)):
        assert client.get(path, headers=headers).status_code == 200


def test_docs_page_points_at_the_openapi_document(shared_app):
    response = shared_app.test_client().get(f"{API}/docs", headers=basic(ADMIN_TOKEN))
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert f"{API}/openapi.json" in response.get_data(as_text=True)


def test_openapi_document_is_valid_openapi_3_listing_the_paths(shared_client, shared_user):
    response = shared_client.get(f"{API}/openapi.json", headers=shared_user())
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    doc = response.get_json()
    problems = openapi_problems(doc)
    assert problems == []

    documented = {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    expected = {
        (method, re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule))
        for method, rule, _endpoint in ROUTES
        if rule not in DOCS
    }
    assert expected - documented == set()
    assert documented - expected == set()
    assert doc["paths"][HEALTH]["get"]["security"] == []
    assert doc["security"] == [{"bearer": []}]


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def openapi_problems(doc: dict) -> list[str]:
    """Check the OpenAPI 3 rules a client generator relies on; list what is wrong."""
    problems = []
    if not str(doc.get("openapi", "")).startswith("3."):
        problems.append(f"openapi version {doc.get('openapi')!r}")
    info = doc.get("info", {})
    if not (isinstance(info.get("title"), str) and isinstance(info.get("version"), str)):
        problems.append("info.title and info.version are required strings")
    if not isinstance(doc.get("paths"), dict) or not doc["paths"]:
        problems.append("paths must be a non-empty object")
        return problems
    allowed_top = {"openapi", "info", "servers", "paths", "components", "security", "tags"}
    problems += [f"unknown top-level key {k}" for k in set(doc) - allowed_top - {"externalDocs"}]

    def resolve(ref: str):
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def walk(node, where):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and (not ref.startswith("#/") or resolve(ref) is None):
                problems.append(f"{where}: unresolved $ref {ref}")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(doc, "#")
    operation_ids = []
    for path, item in doc["paths"].items():
        if not path.startswith("/"):
            problems.append(f"path {path} must start with /")
        declared = {
            p["name"]
            for p in item.get("parameters", [])
            + [p for m in item if m in HTTP_METHODS for p in item[m].get("parameters", [])]
            if p.get("in") == "path"
        }
        for name in re.findall(r"{([^}]+)}", path):
            if name not in declared:
                problems.append(f"{path}: path parameter {name} is not declared")
        for method, operation in item.items():
            if method == "parameters":
                continue
            if method not in HTTP_METHODS:
                problems.append(f"{path}: unknown key {method}")
                continue
            responses = operation.get("responses")
            if not isinstance(responses, dict) or not responses:
                problems.append(f"{path} {method}: no responses")
                continue
            for status, body in responses.items():
                if not re.fullmatch(r"[1-5](\d\d|XX)|default", status):
                    problems.append(f"{path} {method}: bad status {status}")
                if "$ref" not in body and "description" not in body:
                    problems.append(f"{path} {method} {status}: no description")
            if "operationId" in operation:
                operation_ids.append(operation["operationId"])
    if len(operation_ids) != len(set(operation_ids)):
        problems.append("duplicate operationId")
    return problems


# --------------------------------------------------------------------------- error envelope


@pytest.mark.parametrize(
    "path", [f"{API}/nope", "/nope", "/", f"{API}/services/a/b/c/d", f"{API}/instances/x/y"]
)
def test_unknown_path_is_a_json_404(shared_client, admin, path):
    response = shared_client.get(path, headers=admin)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_unknown_path_without_a_token_is_401_not_a_route_map(shared_client):
    response = shared_client.get(f"{API}/nope")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/services", {"GET", "POST"}),
        ("PUT", "/instances", {"GET"}),
        ("DELETE", "/users", {"GET", "POST"}),
        ("POST", "/health", {"GET"}),
        ("PATCH", "/services/gluster/3.7.11", {"GET", "POST", "DELETE"}),
        ("POST", "/services/gluster/3.7.11/template", {"GET", "PUT"}),
        ("PUT", "/hosts/node01", {"GET", "PATCH", "DELETE"}),
    ],
)
def test_wrong_method_is_a_json_405_with_allow(shared_client, admin, method, path, allowed):
    response = shared_client.open(f"{API}{path}", method=method, json={}, headers=admin)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    listed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert listed - {"HEAD", "OPTIONS"} == allowed


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/services"),
        ("POST", "/services/gluster/3.7.11"),
        ("POST", "/services/gluster/3.7.11/plan"),
        ("PUT", "/services/gluster/3.7.11/options"),
        ("POST", "/hosts"),
        ("PATCH", "/hosts/node01"),
        ("POST", "/networks"),
        ("POST", "/users"),
    ],
)
@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data"])
def test_non_json_bodies_are_a_json_415(world, method, path, content_type):
    client = world["client"]
    before = state(client)
    response = client.open(
        f"{API}{path}",
        method=method,
        data='{"name": "x", "version": "1"}',
        content_type=content_type,
        headers=bearer(ADMIN_TOKEN),
    )
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"
    assert content_type in error_of(response)["message"]
    assert state(client) == before
