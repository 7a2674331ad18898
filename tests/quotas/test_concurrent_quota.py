"""Quotas under concurrency, through gunicorn as the Procfile runs it.

20 launches of one user, released together by a barrier against a quota of 5 instances, must
give exactly 5 acceptances and 15 ``quota_exceeded`` refusals: the check and the insert share
one transaction that holds the user's row (PostgreSQL: ``SELECT ... FOR UPDATE``; SQLite: the
write lock of ``BEGIN IMMEDIATE``). On the same stack a rotated token is refused, and the
audit trail lists each admin action once. No worker runs: accepted instances stay pending,
which counts against the quota like any live status.
"""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from bench.load import burst, call, free_port, start_web, stop_group
from bigdata_paas.models import Instance, User
from bigdata_paas.operations.users import create_user
from tests.conftest import ADMIN_TOKEN, base_env, make_app
from tests.quotas.support import register_sized

pytestmark = [pytest.mark.integration]

LAUNCHES = 20
QUOTA = 5


@pytest.fixture(params=["postgresql", "sqlite"])
def stack_env(request, data_root):
    if request.param == "postgresql":
        request.applymarker(pytest.mark.services)
        return request.getfixturevalue("services_env")
    return base_env(data_root / "var")


@pytest.fixture
def stack(stack_env, tmp_path):
    """The app (for the database) and gunicorn on a free port; yields (app, port)."""
    app = make_app(stack_env)
    web = None
    try:
        register_sized(app.test_client())
        port = free_port()
        web = start_web(stack_env, port, tmp_path / "web.log", workers=2, threads=16)
        yield app, port
    finally:
        if web is not None:
            stop_group(web)
        app.extensions["celery"].close()
        app.extensions["paas"].db.dispose()


def test_concurrent_launches_stop_exactly_at_the_quota(stack):
    app, port = stack
    token = create_user(app.extensions["paas"], "alice", actor="admin")["token"]
    quota = call(port, "PUT", "/users/alice/quota", {"instances": QUOTA}, token=ADMIN_TOKEN)
    assert quota.status == 200, quota.body

    result = burst(LAUNCHES, lambda i: call(port, "POST", "/services/sized/1", {"n": 1}, token))
    statuses = Counter(r.status for r in result.replies)
    assert statuses == {202: QUOTA, 403: LAUNCHES - QUOTA}, [r.body for r in result.replies]
    for reply in result.replies:
        if reply.status == 403:
            assert reply.body["error"]["code"] == "quota_exceeded"
            assert reply.body["error"]["details"]["exceeded"] == [
                {"resource": "instances", "requested": 1, "used": QUOTA, "limit": QUOTA}
            ]
    accepted = {r.body["id"] for r in result.replies if r.status == 202}
    with app.extensions["paas"].db.session() as session:
        alice = session.scalar(select(User.id).where(User.name == "alice"))
        rows = set(session.scalars(select(Instance.id).where(Instance.user_id == alice)))
        assert rows == accepted
        held = session.scalar(select(func.sum(Instance.held_nodes)))
        assert held == QUOTA
    me = call(port, "GET", "/users/me", token=token)
    assert me.body["quota"]["instances"] == {"limit": QUOTA, "used": QUOTA}


def test_a_rotated_token_is_refused_and_the_audit_lists_each_action_once(stack):
    app, port = stack
    old = create_user(app.extensions["paas"], "bob", actor="admin")["token"]
    assert call(port, "PUT", "/users/bob/quota", {"cpu": 8}, token=ADMIN_TOKEN).status == 200
    rotated = call(port, "POST", "/users/me/token", {"expires_in": 3600}, token=old)
    assert rotated.status == 201, rotated.body
    new = rotated.body["token"]
    # every web worker refuses the old token: ask more times than there are workers
    for _ in range(6):
        refused = call(port, "GET", "/users/me", token=old)
        assert refused.status == 401
        assert call(port, "GET", "/users/me", token=new).status == 200
    assert call(port, "PATCH", "/users/bob", {"disabled": True}, token=ADMIN_TOKEN).status == 200
    assert call(port, "GET", "/users/me", token=new).status == 401

    trail = call(port, "GET", "/audit?target=user:bob", token=ADMIN_TOKEN)
    assert trail.status == 200
    lines = [(e["actor"], e["action"]) for e in reversed(trail.body["items"])]
    assert lines == [
        ("admin", "user.created"),
        ("admin", "quota.changed"),
        ("bob", "token.rotated"),
        ("admin", "user.disabled"),
    ]
    orquestrators = call(
        port, "GET", "/audit?action=service.orquestrator_changed", token=ADMIN_TOKEN
    )
    assert [e["target"] for e in orquestrators.body["items"]] == ["service:sized/1"]
