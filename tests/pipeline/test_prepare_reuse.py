"""prepare stores the spec the launch rendered, unless the operator changed the service since
the launch: then it renders the service as it is now. On SQLite and on PostgreSQL (the
comparison of the two timestamps is made by the database)."""

from __future__ import annotations

import pytest

from bigdata_paas.models import Node
from bigdata_paas.operations.lifecycle import steps
from bigdata_paas.rendering import supervisor
from tests.conftest import ADMIN_TOKEN, base_env, bearer, make_app

API = "/bigdata/api/v1"
TEMPLATE = """{"nodes": {{ '{' }}{% for i in range(opts['n']) %}"n{{ i }}{{ suffix }}":
 {"cpu": 1, "mem": 128}{{ "," if not loop.last }}{% endfor %}}, "services": {}}"""


@pytest.fixture
def app(each_database, tmp_path):
    app = make_app(base_env(tmp_path / "var", **each_database))
    yield app
    app.extensions["paas"].db.dispose()


def put_template(client, auth, suffix: str) -> None:
    response = client.put(
        f"{API}/services/re/1/template",
        data=TEMPLATE.replace("{{ suffix }}", suffix),
        content_type="text/plain",
        headers=auth,
    )
    assert response.status_code == 200, response.get_json()


def node_names(rt, instance_id: str) -> list[str]:
    with rt.db.session() as session:
        return sorted(n.name for n in session.query(Node).filter_by(instance_id=instance_id))


def test_prepare_renders_again_only_when_the_service_changed(app, monkeypatch):
    rt, client, auth = app.extensions["paas"], app.test_client(), bearer(ADMIN_TOKEN)
    assert (
        client.post(
            f"{API}/services", json={"name": "re", "version": "1"}, headers=auth
        ).status_code
        < 300
    )
    options = {"required": {"n": 2}}
    assert client.put(f"{API}/services/re/1/options", json=options, headers=auth).status_code < 300
    put_template(client, auth, "a")
    assert (
        client.put(
            f"{API}/services/re/1/orquestrator", data=b"print(1)\n", headers=auth
        ).status_code
        < 300
    )

    renders = []
    real = supervisor.render_isolated

    def counting(*args, **kwargs):
        renders.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(supervisor, "render_isolated", counting)
    kept = client.post(f"{API}/services/re/1", json={}, headers=auth).get_json()["id"]
    changed = client.post(f"{API}/services/re/1", json={"n": 3}, headers=auth).get_json()["id"]
    assert len(renders) == 2  # each launch rendered once

    assert steps.prepare(rt, kept) == "prepared"
    assert len(renders) == 2  # the launch's render, stored
    assert node_names(rt, kept) == ["n0a", "n1a"]

    put_template(client, auth, "b")  # the operator changes the template after the launch
    renders.clear()
    assert steps.prepare(rt, changed) == "prepared"
    assert len(renders) == 1
    assert node_names(rt, changed) == ["n0b", "n1b", "n2b"]
    shown = client.get(f"{API}/instances/{changed}", headers=auth).get_json()
    assert sorted(n["name"] for n in shown["nodes"]) == ["n0b", "n1b", "n2b"]
