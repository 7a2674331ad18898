"""A browser-like client of the console for the server-side tests: it signs in through the
form and sends each POST with the CSRF token of the session, as the pages do."""

from __future__ import annotations

import json
import re

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    def __init__(self, app) -> None:
        self.client = app.test_client()

    def csrf(self) -> str:
        page = self.client.get("/console/login")
        return CSRF.search(page.get_data(as_text=True)).group(1)

    def sign_in(self, token: str, next_path: str | None = None):
        query = {"next": next_path} if next_path else {}
        return self.client.post(
            "/console/login", query_string=query, data={"token": token, "csrf_token": self.csrf()}
        )

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def page(self, path: str, status: int = 200) -> str:
        response = self.client.get(path)
        assert response.status_code == status, (path, response.status_code, response.data[:2000])
        return response.get_data(as_text=True)

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kwargs):
        data = dict(data or {})
        if csrf:
            data["csrf_token"] = self.current_csrf()
        return self.client.post(path, data=data, **kwargs)

    def current_csrf(self) -> str:
        page = self.client.get("/console/services")
        return CSRF.search(page.get_data(as_text=True)).group(1)


def token_of(headers: dict[str, str]) -> str:
    """The bearer token in auth headers (tests/conftest.py ``bearer``)."""
    return headers["Authorization"].removeprefix("Bearer ")


API = "/bigdata/api/v1"
#: what a hostile admin (or a copied service definition) may write into the catalog
HOSTILE_DESCRIPTION = "<script>alert('description')</script>"
HOSTILE_DEFAULT = "\"><script>alert('default')</script>"
HOSTILE_HELP = "<img src=x onerror=alert('help')>"
HOSTILE_CHOICE = "<b>bold</b>"
HOSTILE_OPTIONS = {
    "required": {"size": 1, "label": HOSTILE_DEFAULT},
    "optional": {"flavour": HOSTILE_CHOICE},
    "advanced": {"debug": False, "ratio": 0.5},
    "descriptions": {"size": "How many nodes", "label": HOSTILE_HELP},
    "limits": {"size": {"min": 1, "max": 3}, "flavour": {"choices": [HOSTILE_CHOICE, "plain"]}},
}
HOSTILE_TEMPLATE = """{"nodes": {"n0": {"cpu": 1, "mem": 256,
  "label": {{ opts['label'] | tojson }}, "flavour": {{ opts['flavour'] | tojson }}}}}"""


def register_hostile(client, headers) -> None:
    """Register ``evil 1.0``: markup in its description, option defaults, help and choices."""
    service = {"name": "evil", "version": "1.0", "description": HOSTILE_DESCRIPTION}
    assert client.post(f"{API}/services", json=service, headers=headers).status_code == 201
    for part, body in (
        ("template", HOSTILE_TEMPLATE),
        ("options", json.dumps(HOSTILE_OPTIONS)),
        ("orquestrator", "import sys\nsys.exit(0)\n"),
    ):
        response = client.put(
            f"{API}/services/evil/1.0/{part}",
            data=body,
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 200, response.get_json()
