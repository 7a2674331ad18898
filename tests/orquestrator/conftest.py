"""Fixtures of the orquestrator tests on a real worker: a one-node service `web 1`."""

from __future__ import annotations

import pytest

API = "/bigdata/api/v1"
TEMPLATE = '{"nodes": {"web0": {"cpu": 1, "mem": 128}}, "services": {"web": {"nodes": ["web0"]}}}'
HOST = {"name": "h1", "address": "127.0.0.1", "cpu": 4, "mem": 4096}


@pytest.fixture
def web(client, admin):
    """Register `web 1` (one node, no check ports) and one host; returns a PUT helper."""

    def put(part: str, body: str | dict) -> None:
        kwargs = {"json": body} if isinstance(body, dict) else {"data": body}
        response = client.put(f"{API}/services/web/1/{part}", headers=admin, **kwargs)
        assert response.status_code == 200, response.get_json()

    response = client.post(f"{API}/services", json={"name": "web", "version": "1"}, headers=admin)
    assert response.status_code == 201, response.get_json()
    put("template", TEMPLATE)
    put("options", {"required": {}})
    assert client.post(f"{API}/hosts", json=HOST, headers=admin).status_code == 201
    return put


def launch(client, admin) -> str:
    """Launch `web 1` with its defaults; the new instance's id."""
    response = client.post(f"{API}/services/web/1", json={}, headers=admin)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]
