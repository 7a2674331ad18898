"""Inventory changes that placement must not race with take the placement lock (PostgreSQL).

The test holds the advisory lock from its own connection, as a placement in flight does, and
sees each change wait for it: PostgreSQL reports the API's transaction waiting on that lock.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from bigdata_paas.operations.inventory import PLACEMENT_LOCK
from tests.api.support import API
from tests.conftest import ADMIN_TOKEN, bearer, make_app
from tests.placement.helpers import wait_until

pytestmark = [pytest.mark.services]

HOST = {"name": "h1", "address": "10.0.0.1", "cpu": 4, "mem": 4096}
NETWORK = {"name": "lan", "cidr": "10.9.0.0/24"}


def waiting_on_lock(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return row[0]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("patch", f"{API}/hosts/h1", {"state": "drain"}, 200),
        ("delete", f"{API}/hosts/h1", None, 204),
        ("delete", f"{API}/networks/lan", None, 204),
    ],
    ids=["drain host", "delete host", "delete network"],
)
def test_inventory_change_waits_for_a_placement_in_flight(services_env, method, path, body, status):
    app = make_app(services_env)
    try:
        client, admin = app.test_client(), bearer(ADMIN_TOKEN)
        target = NETWORK if "networks" in path else HOST
        kind = "networks" if "networks" in path else "hosts"
        assert client.post(f"{API}/{kind}", json=target, headers=admin).status_code == 201
        url = services_env["PAAS_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        answers: list = []
        with psycopg.connect(url) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (PLACEMENT_LOCK,))
            kwargs = {"headers": admin} | ({"json": body} if body is not None else {})
            thread = threading.Thread(
                target=lambda: answers.append(getattr(client, method)(path, **kwargs))
            )
            thread.start()
            wait_until(lambda: waiting_on_lock(url) == 1, "the change to wait", timeout=30)
            assert answers == []  # still waiting for the lock the "placement" holds
            holder.commit()  # the placement commits: the change goes on
        thread.join(timeout=30)
        assert [a.status_code for a in answers] == [status], [a.get_json() for a in answers]
    finally:
        app.extensions["paas"].db.dispose()
