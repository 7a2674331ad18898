"""Shortcuts of the API tests, and the checks every response of the suite goes through."""

from __future__ import annotations

import json
import re

from flask.testing import FlaskClient
from sqlalchemy import update

API = "/bigdata/api/v1"

#: text that must never reach a client: tracebacks, SQL, driver and ORM names
LEAKS = re.compile(
    r"Traceback \(most recent call last\)|sqlalche|\bsqlite3\b|\bpsycopg\b|OperationalError"
    r"|IntegrityError|\bSELECT\b[^\n]*\bFROM\b|\bINSERT INTO\b|\bUPDATE\b[^\n]*\bSET\b"
    r"|\bDELETE FROM\b|\[SQL:"
)


def check_response(method: str, response) -> None:
    """What holds for every answer: no 5xx, no leak, errors as the one JSON envelope."""
    assert response.status_code < 500, (method, response.status_code, response.get_data())
    if method == "HEAD":
        return
    text = response.get_data(as_text=True)
    leak = LEAKS.search(text)
    assert leak is None, f"response leaks {leak.group(0)!r}: {text[:500]}"
    if response.status_code >= 400:
        assert response.mimetype == "application/json", (response.status_code, text[:300])
        assert "<html" not in text.lower()
        body = json.loads(text)
        assert set(body) == {"error", "status"}, body
        assert body["status"] == response.status_code, body
        error = body["error"]
        assert set(error) <= {"code", "message", "details"}, body
        assert isinstance(error["code"], str) and re.fullmatch(r"[a-z_]+", error["code"]), body
        assert isinstance(error["message"], str) and error["message"], body


class CheckedClient(FlaskClient):
    """A test client that runs ``check_response`` on every response it returns."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        check_response(response.request.method, response)
        return response


def error_of(response) -> dict:
    return response.get_json()["error"]


def problems(response) -> list[dict]:
    """The ``details.problems`` list of a 400 answer."""
    return error_of(response)["details"]["problems"]


def problem_fields(response) -> set[str]:
    return {p["field"] for p in problems(response)}


def instance_total(client, headers) -> int:
    response = client.get(f"{API}/instances", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["total"]


def launch(client, headers, name: str, version: str, options: dict | None = None) -> dict:
    """POST a launch; assert 202 with a Location and return the instance."""
    response = client.post(f"{API}/services/{name}/{version}", json=options or {}, headers=headers)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert response.headers["Location"].endswith(f"{API}/instances/{body['id']}")
    return body


def hosts(client, headers) -> list[dict]:
    response = client.get(f"{API}/hosts", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["hosts"]


def set_status(app, instance_id: str, status: str) -> None:
    """Move an instance as a worker would (no worker runs in the API tests)."""
    from bigdata_paas.models import Instance

    with app.extensions["paas"].db.session() as session:
        session.execute(update(Instance).where(Instance.id == instance_id).values(status=status))
        session.commit()


def add_service(client, headers, name: str, version: str, **parts: bytes | str | dict) -> None:
    """Register ``name/version`` and PUT the given parts (template, options, orquestrator)."""
    response = client.post(
        f"{API}/services", json={"name": name, "version": version}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    for part in ("template", "options", "orquestrator"):
        if part in parts:
            value = parts[part]
            data = json.dumps(value) if isinstance(value, dict) else value
            response = client.put(
                f"{API}/services/{name}/{version}/{part}",
                data=data,
                content_type="application/json",
                headers=headers,
            )
            assert response.status_code == 200, response.get_json()


#: a tiny service: ``n`` nodes of ``cpu`` cores, no disks
TINY_TEMPLATE = """{% set comma = joiner(",") %}
{"nodes": {
{% for i in range(opts['n']) %}{{ comma() }}
  "node{{ i }}": {"cpu": {{ opts['cpu'] }}, "mem": 128, "disks": {}, "networks": {}}
{% endfor %}
}, "services": {}}
"""
TINY_OPTIONS = {
    "required": {"n": 1},
    "optional": {"cpu": 1},
    "descriptions": {"n": "number of nodes", "cpu": "cores per node"},
}
TINY_ORQUESTRATOR = "# paas-actions: scale-out decommission\nimport sys\nprint(sys.argv)\n"


def add_tiny(
    client, headers, *, options: dict = TINY_OPTIONS, orquestrator: str = TINY_ORQUESTRATOR
) -> None:
    """Register ``tiny/1`` (TINY_TEMPLATE) with these options and orquestrator."""
    add_service(
        client,
        headers,
        "tiny",
        "1",
        template=TINY_TEMPLATE,
        options=options,
        orquestrator=orquestrator,
    )
