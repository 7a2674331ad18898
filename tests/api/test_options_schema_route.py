"""GET /services/{name}/{version}/options/schema: the options as a JSON Schema, for any user."""

from __future__ import annotations

import json

import jsonschema_rs

from tests.api.support import API, add_service, error_of
from tests.conftest import EXAMPLES


def test_any_user_reads_the_schema_and_it_judges_as_the_launch_does(shared_client, shared_user):
    user = shared_user()
    response = shared_client.get(f"{API}/services/cdh/5.7.2/options/schema", headers=user)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    schema = response.get_json()
    assert schema["title"] == "cdh 5.7.2 options"
    assert jsonschema_rs.meta.is_valid(schema)
    defaults = json.loads((EXAMPLES / "cdh/5.7.2/options.json").read_text())
    assert schema["x-groups"]["required"] == list(defaults["required"])
    validator = jsonschema_rs.Draft202012Validator(schema)
    assert validator.is_valid({"slaves.number": 3})

    # a wrong type: the schema refuses it, and so does the launch (one 400, every problem)
    bad = {"slaves.number": "3", "slaves.cpu": True}
    assert not validator.is_valid(bad)
    errors = {e.instance_path[0] for e in validator.iter_errors(bad)}
    assert errors == {"slaves.number", "slaves.cpu"}
    launch = shared_client.post(f"{API}/services/cdh/5.7.2", json=bad, headers=user)
    assert launch.status_code == 400
    assert {p["field"] for p in error_of(launch)["details"]["problems"]} == errors


def test_schema_of_a_missing_service_or_options_is_a_404(shared_client, shared_user, admin):
    user = shared_user()
    response = shared_client.get(f"{API}/services/nope/1/options/schema", headers=user)
    assert response.status_code == 404
    add_service(shared_client, admin, "bare", "1")
    response = shared_client.get(f"{API}/services/bare/1/options/schema", headers=user)
    assert response.status_code == 404
    assert error_of(response)["message"] == "service bare/1 has no options yet"


def test_schema_needs_a_token(shared_client):
    response = shared_client.get(f"{API}/services/gluster/3.7.11/options/schema")
    assert response.status_code == 401
