"""A launch on PostgreSQL writes its row in a script on the driver, its values bound by the
driver's own quoting (operations/reads.py: run_script): whatever a user writes in options or
in an Idempotency-Key is stored and answered exactly as sent, and runs nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select

from bigdata_paas.models import Event, Instance
from tests.api.support import API, add_service
from tests.conftest import ADMIN_TOKEN, base_env, bearer, make_app

pytestmark = [pytest.mark.services]

TEMPLATE = """{"nodes": {"n0": {"cpu": 1, "mem": 128, "disks": {}, "networks": {}}},
 "services": {"s": {"label": {{ opts['label']|tojson }}}}}"""
OPTIONS = {"required": {}, "optional": {"label": "x"}, "descriptions": {"label": "free text"}}
HOSTILE = [
    "'); DROP TABLE instances; --",
    "a'b\"c\\d",
    "%(user_id)s %s {} $1 :name",
    "\\x00 \\\\' E'\\n'",
    "ünïcødé ☃ \U0001f680",
    "; COMMIT; BEGIN; DELETE FROM users; --",
]


@pytest.fixture
def client(data_root, pg_database):
    app = make_app(base_env(data_root / "var", PAAS_DATABASE_URL=pg_database))
    # a plain client: the answers echo SQL-like text on purpose (CheckedClient takes that
    # for a leak)
    client = app.test_client()
    add_service(
        client,
        bearer(ADMIN_TOKEN),
        "free",
        "1",
        template=TEMPLATE,
        options=OPTIONS,
        orquestrator="print('ok')\n",
    )
    try:
        yield client, app.extensions["paas"]
    finally:
        app.extensions["paas"].db.dispose()


@pytest.mark.parametrize("text", HOSTILE)
def test_what_a_user_writes_is_stored_as_written(client, text):
    client, rt = client
    # a key is visible ASCII without spaces: the text as one, where it can be
    key = text.replace(" ", "") if text.isascii() else None
    headers = {**bearer(ADMIN_TOKEN), **({"Idempotency-Key": key} if key else {})}
    launched = client.post(f"{API}/services/free/1", json={"label": text}, headers=headers)
    assert launched.status_code == 202, launched.get_json()
    instance_id = launched.get_json()["id"]
    assert launched.get_json()["options"] == {"label": text}
    with rt.db.session() as session:
        stored = session.get(Instance, instance_id)
        assert stored.options == {"label": text}
        assert stored.merged_options == {"label": text}
        assert stored.spec["services"]["s"]["label"] == text
        assert stored.idempotency_key == key
        events = session.scalars(select(Event.message).where(Event.instance_id == instance_id))
        assert list(events) == ["accepted; pipeline enqueued"]
        tables = set(inspect(session.connection()).get_table_names())
    assert {"instances", "users", "events", "services"} <= tables
    if key:  # the same launch again with its key: answered again, nothing new
        again = client.post(f"{API}/services/free/1", json={"label": text}, headers=headers)
        assert again.status_code == 202
        assert again.get_json()["id"] == instance_id
        assert again.headers["Idempotent-Replayed"] == "true"
    # the admin still works, and sees the instance
    shown = client.get(f"{API}/instances/{instance_id}", headers=bearer(ADMIN_TOKEN))
    assert shown.status_code == 200
    assert shown.get_json()["options"] == {"label": text}
