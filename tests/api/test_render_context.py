"""Every render of a service's template sees one context: upload check, plan, launch, and
prepare when it renders (an instance the launch did not render for).

Each stage's render goes through the supervisor; the test records the context it hands over
and compares them, so a stage that built its own context (as the upload check once did, with
``clusterdn = "<name>-test"``) fails here.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update

from bigdata_paas.models import Instance
from bigdata_paas.operations.lifecycle import steps
from bigdata_paas.rendering import RESERVED_NAMES, TRIAL_INSTANCE_ID, supervisor
from tests.api.support import API, add_service, launch

#: a template that prints nothing of its context but needs all of it to render
TEMPLATE = """{"nodes": {"a": {"cpu": {{ opts['cpu'] }}, "mem": {{ mem.size }}}},
 "services": {},
 "who": "{{ instancename }} {{ clusterid }} {{ clusterdn }} {{ user }} {{ service }} {{ version }}"}
"""
OPTIONS = {"required": {"cpu": 1}, "optional": {"mem.size": 128}}


@pytest.fixture
def contexts(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The context of every render from now on, in order."""
    seen: list[dict] = []
    real = supervisor.render_isolated

    def recording(source, context, limits, *, fmt):
        seen.append(context)
        return real(source, context, limits, fmt=fmt)

    monkeypatch.setattr(supervisor, "render_isolated", recording)
    return seen


def shape(context: dict) -> dict:
    """What a template can rely on: the names it sees and the type of each."""
    return {name: type(value).__name__ for name, value in context.items()}


def test_upload_check_plan_launch_and_prepare_render_with_one_context(
    client, admin, make_user, app, contexts
):
    add_service(client, admin, "ctx", "1.0", options=OPTIONS)
    response = client.put(
        f"{API}/services/ctx/1.0/template", data=TEMPLATE, content_type="text/plain", headers=admin
    )
    assert response.status_code == 200, response.get_json()
    response = client.put(f"{API}/services/ctx/1.0/orquestrator", data=b"print(1)\n", headers=admin)
    assert response.status_code == 200, response.get_json()
    [upload] = contexts

    user = make_user("carol")
    plan = client.post(f"{API}/services/ctx/1.0/plan", json={"cpu": 2}, headers=user)
    assert plan.status_code == 200, plan.get_json()
    rt = app.extensions["paas"]
    # prepare stores the spec the launch rendered: it does not render again
    stored = launch(client, user, "ctx", "1.0", {"cpu": 2})
    assert steps.prepare(rt, stored["id"]) == "prepared"
    assert len(contexts) == 3
    # an instance without one (accepted by an earlier version) is rendered by prepare
    instance = launch(client, user, "ctx", "1.0", {"cpu": 2})
    with rt.db.session() as session:
        session.execute(update(Instance).where(Instance.id == instance["id"]).values(spec=None))
        session.commit()
    assert steps.prepare(rt, instance["id"]) == "prepared"
    _upload, planned, _stored, launched, prepared = contexts

    for context in (upload, planned, launched, prepared):
        assert shape(context) == shape(upload)
        assert set(RESERVED_NAMES) <= set(context)
        assert context["instancename"] == f"{context['service']}-{context['clusterid'][:8]}"
        assert context["clusterdn"] == f"{context['instancename']}.{context['user']}"
        assert (context["service"], context["version"]) == ("ctx", "1.0")
        assert context["mem"] == {"size": 128}
    # The upload check renders as the uploader would launch with the defaults.
    assert upload["clusterid"] == TRIAL_INSTANCE_ID
    assert (upload["user"], upload["opts"]) == ("admin", {"cpu": 1, "mem.size": 128})
    # The launch's dry render is the render prepare does, for the same instance.
    assert launched == prepared
    assert prepared["clusterid"] == instance["id"]
    assert prepared["instancename"] == instance["name"]
    assert (prepared["user"], prepared["opts"]) == ("carol", {"cpu": 2, "mem.size": 128})
    # The plan renders as some launch of the same user would, under another id.
    coordinates = ("clusterid", "instancename", "clusterdn")
    assert planned["clusterid"] != instance["id"]
    assert without(planned, coordinates) == without(prepared, coordinates)


def without(context: dict, names: tuple[str, ...]) -> dict:
    return {name: value for name, value in context.items() if name not in names}
