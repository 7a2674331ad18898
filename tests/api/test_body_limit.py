"""Bodies over PAAS_MAX_BODY_BYTES are a JSON 413 and change nothing."""

from __future__ import annotations

import io
import json

import pytest

from tests.api.support import API, add_service, error_of

pytestmark = pytest.mark.security

LIMIT = 2048


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "PAAS_MAX_BODY_BYTES": str(LIMIT)}


def padded(size: int) -> str:
    """A JSON service body of exactly ``size`` bytes."""
    base = {"name": "big", "version": "1", "description": ""}
    base["description"] = "d" * (size - len(json.dumps(base)))
    text = json.dumps(base)
    assert len(text) == size
    return text


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("POST", "/services", "application/json"),
        ("PUT", "/services/t/1/template", "application/json"),
        ("PUT", "/services/t/1/template", "text/plain"),
        ("PUT", "/services/t/1/options", "application/json"),
        ("PUT", "/services/t/1/orquestrator", "application/json"),
        ("POST", "/services/t/1", "application/json"),
        ("POST", "/hosts", "application/json"),
        ("POST", "/users", "application/json"),
    ],
)
def test_a_body_over_the_limit_is_a_json_413(client, admin, method, path, content_type):
    add_service(client, admin, "t", "1")
    response = client.open(
        f"{API}{path}",
        method=method,
        data=padded(LIMIT + 1),
        content_type=content_type,
        headers=admin,
    )
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "too_large"
    assert str(LIMIT) in error["message"]
    detail = client.get(f"{API}/services/t/1", headers=admin).get_json()
    assert (detail["template"], detail["options"], detail["orquestrator"]) == (False,) * 3
    assert [
        s["name"] for s in client.get(f"{API}/services", headers=admin).get_json()["services"]
    ] == ["t"]
    assert client.get(f"{API}/instances", headers=admin).get_json()["total"] == 0


def test_a_body_at_the_limit_is_accepted(client, admin):
    response = client.post(
        f"{API}/services", data=padded(LIMIT), content_type="application/json", headers=admin
    )
    assert response.status_code == 201
    assert len(response.get_json()["description"]) > LIMIT - 100


def chunked(client, admin, method: str, path: str, body: str, content_type: str):
    """Send ``body`` as a chunked request does: no Content-Length, the input terminated
    (what gunicorn tells the app), so the app learns the size only by reading."""
    return client.open(
        f"{API}{path}",
        method=method,
        input_stream=io.BytesIO(body.encode()),
        content_type=content_type,
        headers={**admin, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("POST", "/services", "application/json"),
        ("PUT", "/services/t/1/template", "text/plain"),
        ("PUT", "/services/t/1/orquestrator", "application/json"),
        ("POST", "/services/t/1", "application/json"),
    ],
)
def test_a_chunked_body_over_the_limit_is_a_413_not_a_truncated_body(
    client, admin, method, path, content_type
):
    add_service(client, admin, "t", "1")
    response = chunked(client, admin, method, path, padded(LIMIT + 500), content_type)
    assert response.status_code == 413, response.get_json()
    assert error_of(response)["code"] == "too_large"
    detail = client.get(f"{API}/services/t/1", headers=admin).get_json()
    assert (detail["template"], detail["orquestrator"]) == (False, False)
    assert len(client.get(f"{API}/services", headers=admin).get_json()["services"]) == 1


def test_a_chunked_body_under_the_limit_is_read_whole(client, admin):
    response = chunked(client, admin, "POST", "/services", padded(LIMIT - 1), "application/json")
    assert response.status_code == 201, response.get_json()
    assert len(response.get_json()["description"]) > LIMIT - 100
