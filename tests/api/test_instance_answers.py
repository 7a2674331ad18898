"""GET /instances/{id} on PostgreSQL gives a kept answer again only while nothing it shows
has changed: the token check reads, in its own statement, the version of the instance the
caller may see (its row's, its owner's and its nodes'), and the answer made from that same
version is sent again. Any change to any of them is in the very next answer; whoever may
not see the instance, or whose token no longer works, never gets it."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from flask import jsonify
from sqlalchemy import delete, event, insert, select, text, update

import config
from bigdata_paas import create_app
from bigdata_paas.api import instances as api_instances
from bigdata_paas.api.answers import Answers
from bigdata_paas.api.schemas import InstanceOut
from bigdata_paas.errors import DatabaseUnavailable
from bigdata_paas.models import Instance, Node, User
from bigdata_paas.operations import instances as ops
from bigdata_paas.operations.reads import driver_row
from bigdata_paas.operations.users import token_check
from tests.api.test_instance_read_postgresql import store_instance
from tests.conftest import ADMIN_TOKEN, base_env, bearer, make_app

API = "/bigdata/api/v1"


@pytest.fixture
def deployment(data_root, pg_database, monkeypatch):
    """(app, its runtime, {name: token} of alice and bob, alice's instance id, the list of
    the instances described from the database), with a kept-answers store of its own."""
    app = make_app(base_env(data_root / "var", PAAS_DATABASE_URL=pg_database))
    rt = app.extensions["paas"]
    monkeypatch.setattr(api_instances, "ANSWERS", Answers())
    described: list[str] = []
    read = ops.describe_instance_versioned

    def counted(rt_, user, instance_id):
        described.append(instance_id)
        return read(rt_, user, instance_id)

    monkeypatch.setattr(ops, "describe_instance_versioned", counted)
    client = app.test_client()
    tokens = {}
    for name in ("alice", "bob"):
        answer = client.post(f"{API}/users", json={"name": name}, headers=bearer(ADMIN_TOKEN))
        assert answer.status_code == 201, answer.get_json()
        tokens[name] = answer.get_json()["token"]
    try:
        yield app, rt, tokens, store_instance(rt, "alice"), described
    finally:
        rt.db.dispose()


def fresh(app, rt, instance_id: str) -> bytes:
    """The answer the ORM and the schema make now (no kept answer, not the hot read)."""
    with app.app_context(), rt.db.session() as session:
        return jsonify(InstanceOut().dump(session.get(Instance, instance_id).to_dict())).get_data()


def change(rt, statement) -> None:
    with rt.db.session() as session:
        session.execute(statement)
        session.commit()


def test_a_kept_answer_is_given_until_anything_it_shows_changes(deployment):
    app, rt, tokens, instance_id, described = deployment
    client = app.test_client()
    path, alice = f"{API}/instances/{instance_id}", bearer(tokens["alice"])

    first = client.get(path, headers=alice)
    assert first.status_code == 200 and first.get_data() == fresh(app, rt, instance_id)
    again = client.get(path, headers=alice)
    assert again.status_code == 200 and again.get_data() == first.get_data()
    assert again.mimetype == "application/json"
    assert described == [instance_id]  # the second answer was the kept one

    with rt.db.session() as session:
        node_ids = session.scalars(
            select(Node.id).where(Node.instance_id == instance_id).order_by(Node.id)
        ).all()
    changes = {
        "the instance's status": update(Instance)
        .where(Instance.id == instance_id)
        .values(status="running", failed_step=None, error=None),
        "a node's runtime": update(Node)
        .where(Node.id == node_ids[0])
        .values(runtime={"state": "stopped", "host": "h1", "addresses": {}}),
        "a write of the same value": update(Node)
        .where(Node.id == node_ids[0])
        .values(cpu=Node.cpu),
        "a node removed": delete(Node).where(Node.id == node_ids[1]),
        "a node added": insert(Node).values(
            instance_id=instance_id, name="c", cpu=2, mem=512, spec={"services": ["y"]}
        ),
        "the owner's name": update(User).where(User.name == "alice").values(name="alicia"),
    }
    shown = {first.get_data()}
    for what, statement in changes.items():
        change(rt, statement)
        count = len(described)
        answer = client.get(path, headers=alice)
        assert answer.status_code == 200, (what, answer.get_json())
        assert answer.get_data() == fresh(app, rt, instance_id), what
        assert len(described) == count + 1, f"{what}: the kept answer was given"
        assert client.get(path, headers=alice).get_data() == answer.get_data(), what
        assert len(described) == count + 1, f"{what}: the new answer was not kept"
        shown.add(answer.get_data())
    assert len(shown) == len(changes)  # the same value written again shows the same


def test_a_kept_answer_goes_to_no_one_who_may_not_see_it(deployment):
    app, rt, tokens, instance_id, described = deployment
    client = app.test_client()
    path = f"{API}/instances/{instance_id}"
    admin, alice, bob = bearer(ADMIN_TOKEN), bearer(tokens["alice"]), bearer(tokens["bob"])
    kept = client.get(path, headers=admin)
    assert kept.status_code == 200 and client.get(path, headers=admin).get_data() == kept.get_data()
    assert client.get(path, headers=alice).get_data() == kept.get_data()
    assert described == [instance_id]  # kept, and given to its owner too

    answer = client.get(path, headers=bob)  # another user's instance: a 404, as always
    assert answer.status_code == 404, answer.get_json()
    assert answer.get_json()["error"]["code"] == "not_found"
    assert client.get(path, headers=bearer("not-a-token")).status_code == 401
    assert client.get(path).status_code == 401

    revoked = client.delete(f"{API}/users/alice/token", headers=admin)
    assert revoked.status_code in (200, 204), revoked.get_json()
    assert client.get(path, headers=alice).status_code == 401
    assert (
        client.patch(f"{API}/users/bob", json={"disabled": True}, headers=admin).status_code == 200
    )
    assert client.get(path, headers=bob).status_code == 401
    assert described == [instance_id, instance_id]  # bob's 404 was asked of the database

    change(rt, delete(Node).where(Node.instance_id == instance_id))
    change(rt, delete(Instance).where(Instance.id == instance_id))
    assert client.get(path, headers=admin).status_code == 404  # gone: not the kept answer
    # ids no instance can have are answered as before, with no version to read
    assert client.get(f"{API}/instances/{'a' * 40}", headers=admin).status_code == 404
    nul = client.get(f"{API}/instances/ab%00cd", headers=admin)
    assert nul.status_code == 400, nul.get_json()


def test_on_sqlite_every_answer_is_made_anew(data_root, monkeypatch):
    app = make_app(base_env(data_root / "var"))
    rt = app.extensions["paas"]
    monkeypatch.setattr(api_instances, "ANSWERS", Answers())
    try:
        client = app.test_client()
        created = client.post(f"{API}/users", json={"name": "alice"}, headers=bearer(ADMIN_TOKEN))
        instance_id = store_instance(rt, "alice")
        path = f"{API}/instances/{instance_id}"
        alice = bearer(created.get_json()["token"])
        assert client.get(path, headers=alice).get_data() == fresh(app, rt, instance_id)
        change(rt, update(Instance).where(Instance.id == instance_id).values(status="running"))
        assert client.get(path, headers=alice).get_data() == fresh(app, rt, instance_id)
        assert len(api_instances.ANSWERS) == 0
    finally:
        rt.db.dispose()


def test_the_driver_read_gives_its_connection_back_as_it_found_it(deployment):
    _app, rt, _tokens, _instance_id, _described = deployment
    assert driver_row(rt, text("SELECT 1 + :n"), {"n": 1}) == (2,)
    with pytest.raises(psycopg.errors.UndefinedTable):  # a wrong statement is not a 503
        driver_row(rt, text("SELECT * FROM no_such_table WHERE x = :n"), {"n": 1})
    for _ in range(rt.db.engine.pool.size() + 1):  # every pooled connection: in transactions
        with rt.db.session() as session:
            connection = session.connection().connection.driver_connection
            assert not connection.autocommit
            assert session.connection().get_isolation_level() == "READ COMMITTED"


def test_answers_keep_the_latest_within_their_bounds():
    answers = Answers(entries=2, size=10)
    answers.put("a", "v1", b"1234")
    assert answers.get("a", "v1") == b"1234"
    assert answers.get("a", "v2") is None  # another version: not this answer
    answers.put("a", "v2", b"5678")
    assert answers.get("a", "v1") is None and answers.get("a", "v2") == b"5678"
    answers.put("b", "v1", b"ab")
    answers.get("a", "v2")  # a was asked last: c makes b go
    answers.put("c", "v1", b"cd")
    assert answers.get("b", "v1") is None and answers.get("a", "v2") == b"5678"
    answers.put("d", "v1", b"0123456789")  # only it fits
    assert len(answers) == 1 and answers.get("d", "v1") == b"0123456789"
    answers.put("e", "v1", b"0123456789x")  # too big to keep
    assert answers.get("e", "v1") is None and answers.get("d", "v1") == b"0123456789"


def test_a_busy_web_worker_keeps_its_connections(data_root, pg_database):
    """Eight requests at a time (a gthread worker under load): each pooled connection is
    opened once and kept, not opened and closed again for most requests (with the pool
    smaller than that, it was: a PostgreSQL backend started and ended per request)."""
    app = make_app(base_env(data_root / "var", PAAS_DATABASE_URL=pg_database))
    rt = app.extensions["paas"]
    opened: list[object] = []
    event.listen(rt.db.engine, "connect", lambda connection, _record: opened.append(connection))
    try:
        instance_id = store_instance(rt, "admin")
        path = f"{API}/instances/{instance_id}"

        def follow(_: int) -> set[int]:
            client = app.test_client()
            return {client.get(path, headers=bearer(ADMIN_TOKEN)).status_code for _ in range(40)}

        with ThreadPoolExecutor(8) as pool:
            codes = set().union(*pool.map(follow, range(8)))
        assert codes == {200}
        assert 1 <= len(opened) <= rt.config.DB_POOL_SIZE, len(opened)
    finally:
        rt.db.dispose()


def test_a_database_out_of_reach_is_a_503_for_the_token_check(data_root):
    """The driver read meets a refused connection as any session does: 503 unavailable
    naming the database, not a 500 (the port is this machine's own, closed)."""
    with socket.socket() as probe:  # a local port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/nowhere"
    app = create_app(config.TestConfig.from_env(base_env(data_root / "var", PAAS_DATABASE_URL=url)))
    rt = app.extensions["paas"]
    try:
        with pytest.raises(DatabaseUnavailable):
            driver_row(rt, token_check(), {"digest": "0" * 64})
        for path in ("/instances", f"/instances/{'a' * 32}"):
            answer = app.test_client().get(f"{API}{path}", headers=bearer(ADMIN_TOKEN))
            assert answer.status_code == 503, answer.get_json()
            assert answer.get_json()["error"]["code"] == "unavailable"
            assert "database" in answer.get_json()["error"]["message"]
    finally:
        rt.db.dispose()
