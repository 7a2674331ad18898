"""The launch chain's message: byte for byte what Celery's canvas sends, made without it."""

from __future__ import annotations

import json
import re

import pytest
from celery import chain, signals

from bigdata_paas import logs, states
from bigdata_paas.messaging import publish as publishing

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def messages() -> list[dict]:
    """Each message published, as the ``before_task_publish`` signal shows it."""
    seen: list[dict] = []

    def record(body=None, exchange=None, routing_key=None, headers=None, properties=None, **_):
        seen.append(
            {
                "body": body,
                "exchange": exchange,
                "routing_key": routing_key,
                "headers": headers,
                "properties": properties,
            }
        )

    signals.before_task_publish.connect(record, weak=False, dispatch_uid="test-publish")
    yield seen
    signals.before_task_publish.disconnect(dispatch_uid="test-publish")


def canvas_chain(celery, instance_id: str, first: str) -> None:
    """How publish_chain sent a chain before: through Celery's canvas."""
    steps = states.chain_from(first)
    sig = chain(*(publishing.signature(celery, step, instance_id) for step in steps))
    publishing.publish(celery, sig)


def normalised(sent: list[dict]) -> str:
    """The messages as JSON, each id replaced by the order it first appears in: the same
    shape, the same ids in the same places (a fresh one per message and per step)."""
    ids: dict[str, str] = {}
    text = json.dumps(sent, sort_keys=True, default=str)
    return UUID.sub(lambda found: ids.setdefault(found.group(0), f"<id{len(ids)}>"), text)


@pytest.mark.parametrize("first", states.LAUNCH_STEPS)
def test_the_chain_is_the_message_the_canvas_sends(app, messages, first):
    celery = app.extensions["celery"]
    with logs.bound(request_id="req-12345678"):
        for instance_id in ("i-one", "i-two"):
            canvas_chain(celery, instance_id, first)
        expected = normalised(messages)
        messages.clear()
        for instance_id in ("i-one", "i-two"):
            publishing.publish_chain(celery, instance_id, first)
    assert normalised(messages) == expected
    head = messages[0]
    assert head["headers"]["task"] == f"pipeline.{first}"
    assert head["headers"][logs.HEADER] == "req-12345678"
    later = [step["task"] for step in reversed(head["body"][2]["chain"])]
    assert later == [f"pipeline.{step}" for step in states.chain_from(first)[1:]]
