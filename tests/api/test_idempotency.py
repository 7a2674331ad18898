"""Idempotent launch: ``Idempotency-Key`` makes POST /services/{name}/{version} safe to retry.

The same key with the same launch answers the first instance again and starts nothing; the same
key with another launch is a 409; keys are per user; a launch that answered 503 left nothing and
its key launches anew; two concurrent launches with one key make one instance (the database's
unique (user, key) constraint decides, on SQLite and on PostgreSQL).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask.testing import FlaskClient
from sqlalchemy import false

from bigdata_paas.errors import Unavailable
from bigdata_paas.operations import instances as instance_ops
from tests.api.support import (
    API,
    TINY_OPTIONS,
    TINY_ORQUESTRATOR,
    TINY_TEMPLATE,
    add_service,
    error_of,
    instance_total,
    set_status,
)
from tests.conftest import base_env

pytestmark = pytest.mark.load  # idempotent launches under concurrency

LAUNCH = f"{API}/services/tiny/1"


def add_tiny(client, admin, version: str = "1") -> None:
    add_service(
        client,
        admin,
        "tiny",
        version,
        template=TINY_TEMPLATE,
        options=TINY_OPTIONS,
        orquestrator=TINY_ORQUESTRATOR,
    )


@pytest.fixture
def env(data_root, each_database):
    """Every test here on SQLite and on PostgreSQL, whose launches commit on the driver
    (operations/instances.py: _commit_on_driver)."""
    return base_env(data_root / "var", **each_database)


@pytest.fixture
def published(monkeypatch) -> list[str]:
    """The instance ids whose pipeline was published (the real publish still runs)."""
    ids: list[str] = []
    lock = threading.Lock()
    real = instance_ops.publish_launch

    def counting(celery, instance_id):
        real(celery, instance_id)
        with lock:
            ids.append(instance_id)

    monkeypatch.setattr(instance_ops, "publish_launch", counting)
    return ids


@pytest.fixture
def tiny(client, admin):
    add_tiny(client, admin)
    return client


def post(client, headers, key: str | None, body: str = '{"n": 1}', url: str = LAUNCH):
    extra = {} if key is None else {"Idempotency-Key": key}
    return client.post(
        url, data=body, content_type="application/json", headers={**headers, **extra}
    )


def test_same_key_same_launch_answers_the_first_instance_again(tiny, make_user, published):
    user = make_user()
    first = post(tiny, user, "key-1")
    assert first.status_code == 202
    assert "Idempotent-Replayed" not in first.headers
    # the same JSON in another spelling is the same launch
    again = post(tiny, user, "key-1", body='{ "n" : 1 }')
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert again.get_json()["options"] == {"n": 1}
    assert instance_total(tiny, user) == 1
    assert published == [first.get_json()["id"]]


def test_a_replay_shows_the_instance_as_it_is_now(tiny, app, make_user, published):
    user = make_user()
    first = post(tiny, user, "key-now").get_json()
    set_status(app, first["id"], "failed")
    again = post(tiny, user, "key-now")
    assert again.status_code == 202
    assert again.get_json()["id"] == first["id"]
    assert again.get_json()["status"] == "failed"
    assert published == [first["id"]]


@pytest.mark.parametrize(
    ("body", "url"),
    [
        ('{"n": 2}', LAUNCH),
        ("{}", LAUNCH),
        ('{"n": 1, "cpu": 1}', LAUNCH),
        ('{"n": 1}', f"{API}/services/tiny/2"),
    ],
    ids=["other-value", "defaults", "extra-option", "other-version"],
)
def test_same_key_another_launch_is_a_409_naming_the_key(tiny, admin, make_user, body, url):
    add_tiny(tiny, admin, "2")
    user = make_user()
    first = post(tiny, user, "key-2")
    assert first.status_code == 202
    refused = post(tiny, user, "key-2", body=body, url=url)
    assert refused.status_code == 409
    error = error_of(refused)
    assert error["code"] == "idempotency_key_reused"
    assert "'key-2'" in error["message"]
    assert error["details"] == {"instance": first.get_json()["id"]}
    assert instance_total(tiny, user) == 1


def test_keys_are_per_user(tiny, make_user, published):
    alice, bob = make_user("alice"), make_user("bob")
    a = post(tiny, alice, "shared-key")
    b = post(tiny, bob, "shared-key", body='{"n": 2}')
    assert a.status_code == b.status_code == 202
    assert a.get_json()["id"] != b.get_json()["id"]
    assert a.get_json()["user"] == "alice" and b.get_json()["user"] == "bob"
    assert "Idempotent-Replayed" not in b.headers
    assert instance_total(tiny, alice) == instance_total(tiny, bob) == 1
    assert len(published) == 2


def test_without_a_key_every_launch_is_new(tiny, make_user):
    user = make_user()
    ids = {post(tiny, user, None).get_json()["id"] for _ in range(2)}
    assert len(ids) == 2


@pytest.mark.parametrize(
    "key",
    ["", " ", "a b", "x" * 256, "tab\there", "caf\u00e9", " leading"],
    ids=["empty", "space", "inner-space", "256-chars", "tab", "latin-1", "leading-space"],
)
def test_a_malformed_key_is_a_400_naming_the_header(tiny, make_user, key):
    user = make_user()
    response = post(tiny, user, key)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_input"
    assert error["details"]["problems"][0]["field"] == "Idempotency-Key"
    assert instance_total(tiny, user) == 0


def test_the_longest_key_is_accepted(tiny, make_user):
    user = make_user()
    key = "~" * 254 + "!"
    first = post(tiny, user, key)
    assert first.status_code == 202
    assert post(tiny, user, key).get_json()["id"] == first.get_json()["id"]


def test_a_refused_launch_does_not_use_up_its_key(tiny, make_user):
    user = make_user()
    refused = post(tiny, user, "key-3", body='{"n": "three"}')
    assert refused.status_code == 400
    assert instance_total(tiny, user) == 0
    # the same key with a corrected body launches
    assert post(tiny, user, "key-3").status_code == 202
    assert instance_total(tiny, user) == 1


def test_a_launch_that_failed_to_publish_leaves_its_key_free(tiny, app, make_user, monkeypatch):
    """503: the instance is deleted with its key, so the client's retry launches for real."""
    user = make_user()
    # CheckedClient refuses any 5xx; this one 503 is the point, its envelope checked here
    unchecked = FlaskClient(app, app.response_class)
    real = instance_ops.publish_launch
    calls: list[str] = []

    def broker_down_once(celery, instance_id):
        calls.append(instance_id)
        if len(calls) == 1:
            raise Unavailable("the task broker is unreachable; nothing was started, try again")
        real(celery, instance_id)

    monkeypatch.setattr(instance_ops, "publish_launch", broker_down_once)
    down = post(unchecked, user, "key-4")
    assert down.status_code == 503
    assert down.get_json() == {
        "error": {
            "code": "unavailable",
            "message": "the task broker is unreachable; nothing was started, try again",
        },
        "status": 503,
    }
    assert instance_total(tiny, user) == 0
    retried = post(tiny, user, "key-4")
    assert retried.status_code == 202
    assert "Idempotent-Replayed" not in retried.headers
    assert retried.get_json()["id"] == calls[1] != calls[0]
    replayed = post(tiny, user, "key-4")
    assert replayed.get_json()["id"] == calls[1]
    assert len(calls) == 2
    assert instance_total(tiny, user) == 1


def test_a_lost_race_on_the_unique_key_answers_with_the_winner(app, tiny, make_user, monkeypatch):
    """The request that finds no row for its key (before it renders, and again under the
    lock) but loses the insert replays the winner."""
    user = make_user()
    winner = post(tiny, user, "key-5").get_json()
    real = instance_ops._keyed
    lookups: list[str] = []
    sqlite = app.extensions["paas"].db.is_sqlite
    # the lookups that miss: on SQLite the one before the render and the one under the lock;
    # on PostgreSQL the one before the render (the one under the lock is KEYED, made to miss)
    misses = 2 if sqlite else 1

    def missed_first_lookups(session, user, key):
        lookups.append(key)
        return None if len(lookups) <= misses else real(session, user, key)

    monkeypatch.setattr(instance_ops, "_keyed", missed_first_lookups)
    monkeypatch.setattr(instance_ops, "KEYED", instance_ops.KEYED.where(false()))
    loser = post(tiny, user, "key-5")
    assert loser.status_code == 202
    assert loser.get_json()["id"] == winner["id"]
    assert loser.headers["Idempotent-Replayed"] == "true"
    # the last lookup after the unique key refused the row: it finds the winner
    assert lookups == ["key-5"] * (misses + 1)
    lookups.clear()
    other = post(tiny, user, "key-5", body='{"n": 2}')
    assert other.status_code == 409
    assert instance_total(tiny, user) == 1


def concurrent_launches(app, headers, key: str, threads: int) -> list:
    """``threads`` clients POST the same launch with the same key at the same moment."""
    barrier = threading.Barrier(threads)

    def one(_):
        client = app.test_client()
        barrier.wait(timeout=30)
        return post(client, headers, key)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(threads)))


def check_one_instance(app, client, headers, responses, published) -> None:
    assert [r.status_code for r in responses] == [202] * len(responses)
    ids = {r.get_json()["id"] for r in responses}
    assert len(ids) == 1, ids
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1
    assert instance_total(client, headers) == 1
    assert published == list(ids)


@pytest.fixture
def fake_publish(monkeypatch) -> list[str]:
    """Record instead of publishing: the broker's client is not shared across threads here."""
    ids: list[str] = []
    lock = threading.Lock()

    def record(_celery, instance_id):
        with lock:
            ids.append(instance_id)

    monkeypatch.setattr(instance_ops, "publish_launch", record)
    return ids


def test_concurrent_launches_with_one_key_make_one_instance(app, tiny, make_user, fake_publish):
    user = make_user()
    responses = concurrent_launches(app, user, "key-race", threads=6)
    check_one_instance(app, tiny, user, responses, fake_publish)
