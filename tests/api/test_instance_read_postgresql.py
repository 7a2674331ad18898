"""GET /instances/{id} and the token check on PostgreSQL, where both read without a
transaction (operations/reads.py): the answer is the schema's dump of the instance, another
user's instance is a 404, a revoked, replaced or disabled user's token is refused on the very
next request, and the pooled connection goes back to transactions afterwards."""

from __future__ import annotations

import json
import time

from flask import jsonify

from bigdata_paas.api.schemas import InstanceOut
from bigdata_paas.models import Instance, Node, User
from bigdata_paas.operations.reads import read_connection
from tests.conftest import ADMIN_TOKEN, PG_ADMIN_URL, base_env, bearer, make_app

API = "/bigdata/api/v1"


def store_instance(rt, owner: str) -> str:
    with rt.db.session() as session:
        user = session.query(User).filter_by(name=owner).one()
        instance = Instance(
            user_id=user.id,
            service_name="tiny",
            service_version="1",
            status="failed",
            failed_step="run",
            error="exit 1",
            options={"n": 2},
            merged_options={"n": 2, "m": "x"},
            spec={"nodes": {}, "services": {"s": {"nodes": ["a", "b"]}}},
        )
        session.add(instance)
        session.flush()
        for name, placement in (("b", None), ("a", {"host": "h1", "address": "10.0.0.2"})):
            session.add(
                Node(
                    instance_id=instance.id,
                    name=name,
                    cpu=1,
                    mem=256,
                    spec={"disks": {"d0": {"destination": "/d"}}, "services": ["x"]},
                    placement=placement,
                    runtime={"state": "running", "host": "h1", "addresses": {"eth0": "1"}},
                )
            )
        session.commit()
        return instance.id


def test_the_hot_read_answers_as_the_schema_and_refuses_at_once(data_root, pg_database):
    app = make_app(base_env(data_root / "var", PAAS_DATABASE_URL=pg_database))
    rt = app.extensions["paas"]
    try:
        client = app.test_client()
        admin = bearer(ADMIN_TOKEN)
        tokens = {}
        for name in ("alice", "bob"):
            answer = client.post(f"{API}/users", json={"name": name}, headers=admin)
            assert answer.status_code == 201, answer.get_json()
            tokens[name] = answer.get_json()["token"]
        instance_id = store_instance(rt, "alice")
        path = f"{API}/instances/{instance_id}"

        answer = client.get(path, headers=bearer(tokens["alice"]))
        assert answer.status_code == 200
        with app.app_context(), rt.db.session() as session:
            expected = jsonify(InstanceOut().dump(session.get(Instance, instance_id).to_dict()))
        assert answer.get_data() == expected.get_data()
        assert [n["name"] for n in json.loads(answer.get_data())["nodes"]] == ["b", "a"]
        assert client.get(path, headers=admin).get_data() == expected.get_data()
        assert client.get(path, headers=bearer(tokens["bob"])).status_code == 404
        assert client.get(f"{API}/instances/nope", headers=admin).status_code == 404

        # a replaced token, a revoked one, a disabled user: refused on the next request
        rotated = client.post(f"{API}/users/alice/token", headers=admin)
        assert rotated.status_code == 201, rotated.get_json()
        assert client.get(path, headers=bearer(tokens["alice"])).status_code == 401
        new = rotated.get_json()["token"]
        assert client.get(path, headers=bearer(new)).status_code == 200
        assert client.delete(f"{API}/users/alice/token", headers=admin).status_code in (200, 204)
        assert client.get(path, headers=bearer(new)).status_code == 401
        assert client.get(f"{API}/instances", headers=bearer(tokens["bob"])).status_code == 200
        disabled = client.patch(f"{API}/users/bob", json={"disabled": True}, headers=admin)
        assert disabled.status_code == 200, disabled.get_json()
        assert client.get(f"{API}/instances", headers=bearer(tokens["bob"])).status_code == 401

        # the connections the reads used are back in transactions for everyone else
        with read_connection(rt) as conn:
            assert conn.connection.driver_connection.autocommit
        with rt.db.session() as session:
            raw = session.connection().connection.driver_connection
            assert not raw.autocommit
            assert session.connection().get_isolation_level() == "READ COMMITTED"
    finally:
        rt.db.dispose()


def test_a_connection_pinged_after_sitting_idle_reads_without_a_transaction(
    data_root, pg_database, monkeypatch
):
    """A pooled connection idle past PING_AFTER is pinged as it leaves the pool; the ping's
    transaction is ended, so the token check can still switch it to autocommit."""
    from bigdata_paas import db

    app = make_app(base_env(data_root / "var", PAAS_DATABASE_URL=pg_database))
    rt = app.extensions["paas"]
    try:
        client = app.test_client()
        assert client.get(f"{API}/instances", headers=bearer(ADMIN_TOKEN)).status_code == 200
        monkeypatch.setattr(db, "PING_AFTER", 0.0)  # every pooled connection is now "idle"
        with read_connection(rt) as conn:
            assert conn.connection.driver_connection.autocommit
        assert client.get(f"{API}/instances", headers=bearer(ADMIN_TOKEN)).status_code == 200
    finally:
        rt.db.dispose()


def test_a_pooled_connection_whose_backend_went_away_a_moment_ago_is_replaced(
    data_root, pg_database
):
    """A restart quicker than PING_AFTER: the server closed the pooled connections (here:
    their backends are terminated) a moment after their last use. The next request is
    answered, on a new connection, not with a 503."""
    import psycopg

    app = make_app(base_env(data_root / "var", PAAS_DATABASE_URL=pg_database))
    rt = app.extensions["paas"]
    try:
        client = app.test_client()
        assert client.get(f"{API}/instances", headers=bearer(ADMIN_TOKEN)).status_code == 200
        dbname = pg_database.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchall()
            assert ended and all(row[1] for row in ended)
            # terminating signals the backends; as a server that stops, wait until they are gone
            pids = [row[0] for row in ended]
            deadline = time.monotonic() + 10
            while admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
            ).fetchone()[0]:
                assert time.monotonic() < deadline, "the backends did not end"
                time.sleep(0.01)
        time.sleep(0.05)  # their exit closes the sockets (a stopped server's have closed)
        for _ in range(3):
            answer = client.get(f"{API}/instances", headers=bearer(ADMIN_TOKEN))
            assert answer.status_code == 200, answer.get_json()
    finally:
        rt.db.dispose()
