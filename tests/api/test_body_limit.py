"""Bodies over PAAS_MAX_BODY_BYTES are a JSON 413 and change nothing."""

from __future__ import annotations

import json

import pytest

from tests.api.support import API, add_service, error_of

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
