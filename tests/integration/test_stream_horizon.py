"""On PostgreSQL, event ids do not commit in order: streams must wait for the older ones.

Two raw connections write events of one instance: the first takes the smaller id and stays
open, the second takes the next id and commits. Until the first commits (or is given up on
after PAAS_STREAM_GAP_TIMEOUT), no feed may show the second: a client resuming after it would
never see the first. An idle reader's open transaction holds nothing back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import psycopg
import pytest
from flask.testing import FlaskClient

from tests.api.streaming import Follower
from tests.api.support import TINY_OPTIONS, TINY_ORQUESTRATOR, TINY_TEMPLATE, add_service, launch
from tests.conftest import ADMIN_TOKEN, bearer, make_app

pytestmark = [pytest.mark.integration, pytest.mark.services]

API = "/bigdata/api/v1"
ADMIN = bearer(ADMIN_TOKEN)


@pytest.fixture
def deployment(services_env, request) -> Iterator[tuple]:
    """(app, client, instance id, a psycopg URL) on the test's PostgreSQL database."""
    gap = getattr(request, "param", "60")
    env = {**services_env, "PAAS_STREAM_POLL_INTERVAL": "0.05", "PAAS_STREAM_GAP_TIMEOUT": gap}
    app = make_app(env)
    client = FlaskClient(app)
    add_service(
        client,
        ADMIN,
        "tiny",
        "1",
        template=TINY_TEMPLATE,
        options=TINY_OPTIONS,
        orquestrator=TINY_ORQUESTRATOR,
    )
    instance_id = launch(client, ADMIN, "tiny", "1", {"n": 1})["id"]
    url = services_env["PAAS_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    try:
        yield app, client, instance_id, url
    finally:
        app.extensions["feeds"].close(wait=30)
        app.extensions["celery"].close()
        app.extensions["paas"].db.dispose()


def timeline(client, instance_id: str, **query) -> list[int]:
    response = client.get(
        f"{API}/instances/{instance_id}/events", headers=ADMIN, query_string=query
    )
    assert response.status_code == 200, response.get_json()
    return [e["id"] for e in response.get_json()["events"]]


def insert(conn: psycopg.Connection, instance_id: str, message: str) -> int:
    return conn.execute(
        "INSERT INTO events (instance_id, at, step, status, message)"
        " VALUES (%s, now(), 'test', 'pending', %s) RETURNING id",
        (instance_id, message),
    ).fetchone()[0]


def test_a_later_id_waits_for_an_earlier_one_still_in_flight(deployment):
    _app, client, instance_id, url = deployment
    (accepted,) = timeline(client, instance_id)  # the horizon exists before the race
    stream = Follower(client, f"/instances/{instance_id}/events/stream?after={accepted}", ADMIN)
    with psycopg.connect(url) as slow, psycopg.connect(url, autocommit=True) as fast:
        first = insert(slow, instance_id, "first")  # the smaller id, not committed yet
        second = insert(fast, instance_id, "second")  # committed
        assert second > first
        # the timeline, a long-poll and the stream all hold the second back
        assert timeline(client, instance_id) == [accepted]
        assert timeline(client, instance_id, after=accepted, wait=0.5) == []
        assert stream.next().startswith("retry:")
        assert stream.next().startswith(": keep-alive")  # and nothing before it
        slow.commit()
        assert [stream.next_event()[0] for _ in range(2)] == [first, second]
    assert timeline(client, instance_id) == [accepted, first, second]
    assert timeline(client, instance_id, after=accepted, wait=5) == [first, second]
    stream.close()


@pytest.mark.parametrize("deployment", ["1"], indirect=True)
def test_a_writer_open_past_the_gap_timeout_is_given_up_on(deployment, caplog):
    _app, client, instance_id, url = deployment
    (accepted,) = timeline(client, instance_id)
    stream = Follower(client, f"/instances/{instance_id}/events/stream?after={accepted}", ADMIN)
    with (
        caplog.at_level(logging.WARNING, "bigdata_paas.operations.feeds"),
        psycopg.connect(url) as slow,
        psycopg.connect(url, autocommit=True) as fast,
    ):
        first = insert(slow, instance_id, "first")
        second = insert(fast, instance_id, "second")
        assert stream.next_event()[0] == second  # after the gap timeout, not before
        slow.commit()
    assert "outlived STREAM_GAP_TIMEOUT" in caplog.text
    assert timeline(client, instance_id) == [accepted, first, second]
    stream.close()


def test_an_idle_reader_holds_nothing_back(deployment):
    _app, client, instance_id, url = deployment
    (accepted,) = timeline(client, instance_id)
    with psycopg.connect(url) as reader, psycopg.connect(url, autocommit=True) as writer:
        reader.execute("SELECT count(*) FROM instances").fetchone()  # open, idle, no xid
        new = insert(writer, instance_id, "new")
        # with a 60 s gap timeout, only a horizon that ignores the reader shows it here
        assert timeline(client, instance_id) == [accepted, new]
        reader.rollback()
