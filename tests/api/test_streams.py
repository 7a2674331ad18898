"""Event streams, log streams and the long-poll, through the Flask app (in process).

A worker's steps are played by writing the instance's status and event rows as ``advance``
does. Streams are read on threads (the poller wakes them), with short keep-alive and poll
intervals; nothing here asserts on time, only on what arrives and in which order.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event as sa_event

from bigdata_paas.client.sse import parse
from tests.api.streaming import Follower, log_line, record
from tests.api.support import API, add_tiny, check_response, error_of, launch
from tests.conftest import base_env, wait_until


@pytest.fixture
def env(data_root):
    return base_env(
        data_root / "var",
        PAAS_STREAM_KEEPALIVE="0.2",
        PAAS_STREAM_POLL_INTERVAL="0.05",
        PAAS_WEB_THREADS="40",  # 35 streams per process
    )


@pytest.fixture
def follow(app, raw):
    """Open a stream read by a Follower; at the end every stream ends (the hub closes, as on
    a worker's shutdown) and its reader is joined before the database goes."""
    followers: list[Follower] = []

    def open_stream(path: str, headers: dict, **kwargs) -> Follower:
        followers.append(Follower(raw, path, headers, **kwargs))
        return followers[-1]

    yield open_stream
    app.extensions["feeds"].close(wait=30)
    for follower in followers:
        if follower.thread is not None:
            follower.thread.join(30)


@pytest.fixture
def raw(app, admin) -> Iterator[FlaskClient]:
    """A client that leaves bodies unread (a stream is read by a Follower), with `tiny 1`."""
    client = FlaskClient(app)
    add_tiny(client, admin)
    yield client
    app.extensions["feeds"].close(wait=30)  # the poller stops before the database goes


def hub(app):
    return app.extensions["feeds"]


def events_of(client, headers, instance_id: str, **query) -> dict:
    response = client.get(
        f"{API}/instances/{instance_id}/events", headers=headers, query_string=query
    )
    check_response("GET", response)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- ids, backlog, end --------------------------------------------------------------------------


def test_events_carry_the_ids_of_the_stream_which_ends_at_running(app, raw, follow, admin):
    instance = launch(raw, admin, "tiny", "1", {"n": 1})
    record(app, instance["id"], "prepare", "prepared", "template rendered")
    record(app, instance["id"], "submit", "submitted")
    stream = follow(f"/instances/{instance['id']}/events/stream", admin)
    assert stream.response.status_code == 200
    assert stream.response.mimetype == "text/event-stream"
    assert stream.response.headers["Cache-Control"] == "no-cache"
    assert stream.next() == "retry: 2000\n\n"  # at once, before any event
    first = [stream.next_event() for _ in range(3)]
    record(app, instance["id"], "queue", "queued", "waiting for capacity")
    record(app, instance["id"], "schedule", "scheduled", "placed on node01")
    record(app, instance["id"], "run", "running", "started")
    live = stream.rest()
    timeline = events_of(raw, admin, instance["id"])
    items = timeline["events"]
    assert [(i, name) for i, name, _ in first] == [(e["id"], e["status"]) for e in items[:3]]
    assert [data for _, _, data in first] + live == items
    assert [e["status"] for e in items] == [
        "pending",
        "prepared",
        "submitted",
        "queued",
        "scheduled",
        "running",
    ]
    assert all(e["instance_id"] == instance["id"] for e in items)
    assert [e["id"] for e in items] == sorted({e["id"] for e in items})
    assert timeline["last"] == items[-1]["id"]
    # the message format itself: id, event (the status), one line of JSON data
    running = items[-1]
    data = json.dumps(running, separators=(",", ":"))
    assert f"id: {running['id']}\nevent: running\ndata: {data}\n\n" in stream.raw


def test_follow_goes_past_running_until_destroyed(app, raw, follow, admin):
    instance = launch(raw, admin, "tiny", "1", {"n": 1})
    record(app, instance["id"], "run", "running")
    stream = follow(f"/instances/{instance['id']}/events/stream?follow=true", admin)
    assert [stream.next_event()[1] for _ in range(2)] == ["pending", "running"]
    assert stream.next().startswith(": keep-alive")  # still open after running
    record(app, instance["id"], "destroy", "destroying")
    record(app, instance["id"], "destroy", "destroyed")
    assert [e["status"] for e in stream.rest()] == ["destroying", "destroyed"]


def test_nothing_more_to_say_is_a_204(app, raw, follow, admin):
    instance = launch(raw, admin, "tiny", "1", {"n": 1})
    record(app, instance["id"], "run", "running")
    last = events_of(raw, admin, instance["id"])["last"]
    path = f"{API}/instances/{instance['id']}/events/stream"
    for headers, query in (({"Last-Event-ID": str(last)}, {}), ({}, {"after": last})):
        response = raw.get(path, headers={**admin, **headers}, query_string=query)
        assert response.status_code == 204, response.get_data()
        assert response.get_data() == b""
    # one before the last: the running event, then the end
    response = raw.get(path, headers={**admin, "Last-Event-ID": str(last - 1)})
    assert response.status_code == 200
    assert [m.event for m in parse(response.get_data(as_text=True).split("\n"))] == [
        "",
        "running",
    ]
    # following, running is not the end
    following = follow(f"/instances/{instance['id']}/events/stream?follow=true&after={last}", admin)
    assert following.response.status_code == 200
    assert following.next() == "retry: 2000\n\n"
    following.close()


def test_resume_with_last_event_id_or_after_yields_each_event_once(app, raw, follow, admin):
    instance = launch(raw, admin, "tiny", "1", {"n": 1})
    for step, status in (("prepare", "prepared"), ("submit", "submitted"), ("queue", "queued")):
        record(app, instance["id"], step, status)
    ids = [e["id"] for e in events_of(raw, admin, instance["id"])["events"]]
    path = f"/instances/{instance['id']}/events/stream"

    cut = follow(path, admin)
    seen = [cut.next_event()[0] for _ in range(2)]
    cut.close()  # the client went away after two events
    wait_until(lambda: hub(app).open_streams == 0, "the cut stream to give its place back")

    by_header = follow(path, {**admin, "Last-Event-ID": str(seen[-1])}, query_string={"after": 0})
    by_query = follow(f"{path}?after={seen[-1]}", admin)
    resumed = [by_header.next_event()[0] for _ in range(2)]
    assert [by_query.next_event()[0] for _ in range(2)] == resumed
    record(app, instance["id"], "run", "running")
    tail = [e["id"] for e in by_header.rest()]
    assert seen + resumed + tail == [*ids, ids[-1] + 1]
    assert [e["id"] for e in by_query.rest()] == tail


def test_a_failure_before_a_retry_does_not_end_the_stream(app, raw, follow, admin):
    instance = launch(raw, admin, "tiny", "1", {"n": 1})
    record(app, instance["id"], "prepare", "failed", "template broke")
    record(app, instance["id"], "retry", "pending", "retry from prepare")
    stream = follow(f"/instances/{instance['id']}/events/stream", admin)
    assert [stream.next_event()[1] for _ in range(3)] == ["pending", "failed", "pending"]
    assert stream.next().startswith(": keep-alive")
    record(app, instance["id"], "prepare", "failed", "template broke again")
    assert [e["message"] for e in stream.rest()] == ["template broke again"]


def test_bad_cursors_and_flags_are_400s(raw, admin):
    instance = launch(raw, admin, "tiny", "1", {"n": 1})
    path = f"{API}/instances/{instance['id']}/events/stream"
    for headers, query, field in (
        ({"Last-Event-ID": "x1"}, {}, "Last-Event-ID"),
        ({"Last-Event-ID": "9" * 19}, {}, "Last-Event-ID"),
        ({}, {"after": "-1"}, "after"),
        ({}, {"after": "²"}, "after"),
        ({}, {"follow": "perhaps"}, "follow"),
    ):
        response = raw.get(path, headers={**admin, **headers}, query_string=query)
        check_response("GET", response)
        assert response.status_code == 400
        assert error_of(response)["details"]["problems"][0]["field"] == field


# -- logs ---------------------------------------------------------------------------------------


def test_log_stream_sends_lines_then_ends_with_the_instance(app, raw, follow, admin):
    instance = launch(raw, admin, "tiny", "1", {"n": 1})
    record(app, instance["id"], "run", "scheduled")
    log_line(app, instance["id"], "starting node0")
    stream = follow(f"/instances/{instance['id']}/logs/stream", admin)
    first_id, kind, first = stream.next_event()
    assert (kind, first["line"], first["id"]) == ("log", "starting node0", first_id)
    log_line(app, instance["id"], "node0 up", "stderr")
    log_line(app, instance["id"], "cluster configured")
    record(app, instance["id"], "run", "running")
    rest = stream.rest()
    assert [(line["stream"], line["line"]) for line in rest] == [
        ("stderr", "node0 up"),
        ("stdout", "cluster configured"),
    ]
    lines = raw.get(f"{API}/instances/{instance['id']}/logs", headers=admin).get_json()["lines"]
    assert [first, *rest] == lines
    # all seen, instance running: nothing more
    response = raw.get(
        f"{API}/instances/{instance['id']}/logs/stream",
        headers={**admin, "Last-Event-ID": str(lines[-1]["id"])},
    )
    assert response.status_code == 204


# -- the long-poll ------------------------------------------------------------------------------


def test_long_poll_answers_when_an_event_comes_or_empty_after_wait(app, raw, admin):
    instance = launch(raw, admin, "tiny", "1", {"n": 1})
    first = events_of(raw, admin, instance["id"])
    assert first["last"] == first["events"][0]["id"]
    # newer events exist: at once
    record(app, instance["id"], "prepare", "prepared")
    answer = events_of(raw, admin, instance["id"], after=first["last"], wait=60)
    assert [e["status"] for e in answer["events"]] == ["prepared"]
    # none yet: the answer comes with the next event
    last = answer["last"]
    got: list = []
    poll = threading.Thread(
        target=lambda: got.append(events_of(raw, admin, instance["id"], after=last, wait=60))
    )
    poll.start()
    wait_until(lambda: hub(app).open_streams == 1, "the long-poll to wait")
    record(app, instance["id"], "submit", "submitted")
    poll.join(30)
    assert [e["status"] for e in got[0]["events"]] == ["submitted"]
    assert got[0]["last"] == last + 1
    # none at all: empty after the wait
    assert events_of(raw, admin, instance["id"], after=last + 1, wait=0.2) == {
        "events": [],
        "last": last + 1,
    }


@pytest.mark.parametrize("wait", ["61", "-1", "abc", "nan", "inf", "1e400", ""])
def test_long_poll_wait_is_checked(raw, admin, wait):
    instance = launch(raw, admin, "tiny", "1", {"n": 1})
    response = raw.get(
        f"{API}/instances/{instance['id']}/events?after=1&wait={wait}", headers=admin
    )
    check_response("GET", response)
    assert response.status_code == 400
    assert error_of(response)["details"]["problems"] == [
        {"field": "wait", "message": "must be a number of seconds from 0 to 60"}
    ]


# -- who sees what ------------------------------------------------------------------------------


def test_a_users_streams_never_show_another_users_instance(app, raw, follow, admin, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    secret = "alice-only-" + uuid.uuid4().hex[:8]
    theirs = launch(raw, alice, "tiny", "1", {"n": 1})
    record(app, theirs["id"], "prepare", "prepared", secret)
    log_line(app, theirs["id"], secret)
    own = launch(raw, bob, "tiny", "1", {"n": 1})

    # another user's instance is a 404 on every stream and on the long-poll
    for suffix in ("/events/stream", "/logs/stream", "/events?wait=1"):
        response = raw.get(f"{API}/instances/{theirs['id']}{suffix}", headers=bob)
        check_response("GET", response)
        assert response.status_code == 404
        assert error_of(response)["message"] == f"instance {theirs['id']} not found"

    bobs = follow("/events/stream?after=0", bob)
    admins = follow("/events/stream?after=0", admin)
    alices = follow("/events/stream", alice)  # from now on
    record(app, theirs["id"], "submit", "submitted", secret)
    record(app, own["id"], "prepare", "prepared", "bob's")
    seen_by_bob = [bobs.next_event()[2] for _ in range(2)]
    assert [(e["instance_id"], e["status"]) for e in seen_by_bob] == [
        (own["id"], "pending"),
        (own["id"], "prepared"),
    ]
    seen_by_admin = [admins.next_event()[2] for _ in range(5)]
    assert [e["instance_id"] for e in seen_by_admin] == [theirs["id"]] * 2 + [own["id"]] + [
        theirs["id"],
        own["id"],
    ]
    assert alices.next_event()[2]["message"] == secret
    record(app, own["id"], "submit", "submitted", "bob's again")
    assert bobs.next_event()[2]["message"] == "bob's again"
    for follower in (bobs, admins, alices):
        follower.close()
    assert not any(secret in chunk for chunk in bobs.raw)


# -- the cost of quiet streams, limits, ends -------------------------------------------------


def test_quiet_streams_cost_one_query_per_poll_whatever_their_number(app, raw, follow, admin):
    instance = launch(raw, admin, "tiny", "1", {"n": 1})
    statements = []
    engine = hub(app).reader
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    streams = [follow(f"/instances/{instance['id']}/events/stream", admin) for _ in range(20)]
    for stream in streams:
        stream.next_event()
    sa_event.listen(engine, "before_cursor_execute", listener)
    try:
        start = hub(app).queries
        statements.clear()
        wait_until(lambda: hub(app).queries >= start + 10, "ten looks for new events")
        looks = hub(app).queries - start
        counted = len(statements)
        # every stream keeps its client alive meanwhile, without a query
        for stream in streams:
            assert stream.next().startswith(": keep-alive")
    finally:
        sa_event.remove(engine, "before_cursor_execute", listener)
    assert counted in (looks, looks + 1), statements  # + the look running as we counted
    assert all("max(id)" in sql for sql in statements), statements
    for stream in streams:
        stream.close()
    wait_until(lambda: hub(app).open_streams == 0, "the streams to give their places back")


def test_a_process_holds_its_limit_of_streams_then_answers_503(app, raw, follow, admin):
    limit = app.extensions["paas"].config.stream_limit
    assert limit == 35
    instance = launch(raw, admin, "tiny", "1", {"n": 1})
    path = f"/instances/{instance['id']}/events/stream"
    streams = [follow(path, admin) for _ in range(limit)]
    assert {s.response.status_code for s in streams} == {200}
    refused = raw.get(API + path, headers=admin)
    assert refused.status_code == 503  # in the envelope, as every error
    assert set(refused.get_json()) == {"error", "status"}
    assert error_of(refused)["code"] == "too_many_streams"
    long_poll = raw.get(f"{API}/instances/{instance['id']}/events?after=1&wait=5", headers=admin)
    assert long_poll.status_code == 503
    # ordinary requests are not streams
    assert raw.get(f"{API}/instances/{instance['id']}", headers=admin).status_code == 200
    streams[0].close()
    wait_until(lambda: hub(app).open_streams == limit - 1, "a place to free")
    again = follow(path, admin)
    assert again.response.status_code == 200
    for stream in [*streams, again]:
        stream.close()


def test_streams_end_at_their_max_age_and_when_the_process_stops(app, raw, follow, admin):
    instance = launch(raw, admin, "tiny", "1", {"n": 1})
    app.extensions["paas"].config.STREAM_MAX_AGE = 0.3
    aged = follow(f"/instances/{instance['id']}/events/stream", admin)
    assert [e["status"] for e in aged.rest()] == ["pending"]
    app.extensions["paas"].config.STREAM_MAX_AGE = 3600
    streams = [
        follow(f"/instances/{instance['id']}/events/stream", admin),
        follow("/events/stream", admin),
    ]
    streams[0].next_event()
    hub(app).close()  # what a gunicorn worker does on SIGTERM (config/gunicorn.py)
    assert [len(s.rest()) for s in streams] == [0, 0]
    refused = raw.get(f"{API}/events/stream", headers=admin)
    assert refused.status_code == 503
    assert "shutting down" in error_of(refused)["message"]


def test_streams_are_documented_as_event_streams(raw, admin):
    spec = raw.get(f"{API}/openapi.json", headers=admin).get_json()
    for path in (
        "/instances/{instance_id}/events/stream",
        "/instances/{instance_id}/logs/stream",
        "/events/stream",
    ):
        answers = spec["paths"][API + path]["get"]["responses"]
        assert "text/event-stream" in answers["200"]["content"], path
        assert {"400", "401", "404", "503"} <= set(answers), path
    events = spec["paths"][API + "/instances/{instance_id}/events"]["get"]
    assert {p["name"] for p in events["parameters"]} >= {"after", "wait"}
