"""Log lines: JSON or text, with the ids of the request or task they belong to."""

from __future__ import annotations

import json
import logging

import pytest

from bigdata_paas import logs
from tests.conftest import base_env, make_app


def record(message: str = "hello %s", *args) -> logging.LogRecord:
    return logging.LogRecord(
        "bigdata_paas.x", logging.INFO, __file__, 1, message, args or ("w",), None
    )


def formatted(fmt: str, **ids: str) -> str:
    rec = record()
    with logs.bound(**ids):
        logs.ContextFilter().filter(rec)
    return logs.make_formatter(fmt).format(rec)


def test_a_json_line_has_level_logger_message_and_the_known_ids():
    line = json.loads(formatted("json", request_id="r-12345678", instance_id="i1", step="run"))
    assert line["level"] == "INFO" and line["logger"] == "bigdata_paas.x"
    assert line["message"] == "hello w" and "time" in line
    assert (line["request_id"], line["instance_id"], line["step"]) == ("r-12345678", "i1", "run")
    assert "task" not in line  # unknown: left out, not null


def test_a_text_line_is_readable_with_the_ids_at_the_end():
    line = formatted("text", request_id="r-12345678", task="pipeline.run")
    assert line.endswith("INFO bigdata_paas.x: hello w [request_id=r-12345678 task=pipeline.run]")
    assert formatted("text").endswith("bigdata_paas.x: hello w")
    rec = record("done request_id=%s", "r-12345678")  # gunicorn's access line names it
    with logs.bound(request_id="r-12345678"):
        logs.ContextFilter().filter(rec)
    assert logs.make_formatter("text").format(rec).endswith(": done request_id=r-12345678")


def test_the_ids_end_with_their_block():
    with logs.bound(request_id="outer-123"):
        with logs.bound(request_id="inner-123"):
            assert logs.current("request_id") == "inner-123"
        assert logs.current("request_id") == "outer-123"
    assert logs.current("request_id") is None


@pytest.mark.parametrize(
    ("given", "taken"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),
        ("abcdefgh", True),
        ("a" * 128, True),
        ("short", False),
        ("a" * 129, False),
        ("has space in it", False),
        ("new\nline-injected", False),
        ('{"json":"x"}', False),
        ("", False),
        (None, False),
    ],
)
def test_a_request_id_is_taken_only_when_well_formed(given, taken):
    request_id, was_taken = logs.accepted_request_id(given)
    assert was_taken is taken
    assert request_id == given if taken else (len(request_id) == 32 and request_id != given)


def test_a_published_message_carries_the_request_id_of_its_context():
    headers: dict = {}
    logs._add_request_id(headers=headers)
    assert headers == {}  # no request: nothing added
    with logs.bound(request_id="req-12345678"):
        logs._add_request_id(headers=headers)
    assert headers == {logs.HEADER: "req-12345678"}


@pytest.mark.parametrize(
    ("task_name", "args", "kwargs", "expected"),
    [
        ("pipeline.prepare", ("i-prepare",), {}, "i-prepare"),
        ("pipeline.resize", (), {"instance_id": "i-resize"}, "i-resize"),
        ("pipeline.node_report", ("node01", "i-node", "gluster0", "running"), {}, "i-node"),
        ("pipeline.agent_report", ("node01", {"nodes": []}), {}, None),
        ("pipeline.sweep", (), {}, None),
    ],
)
def test_a_task_binds_the_argument_named_instance_id(task_name, args, kwargs, expected, tmp_path):
    """By the task's own parameters: an agent's report, whose first argument is a host name,
    names no instance."""
    # An app of the test's own (importing bigdata_paas.worker would make one in ./var and
    # point this process's temp files into its broker folder)
    app = make_app(base_env(tmp_path / "var"))
    task = app.extensions["celery"].tasks[task_name]
    logs._bind_task(task=task, args=args, kwargs=kwargs)
    try:
        assert logs.current("instance_id") == expected
        assert logs.current("step") == task_name.partition(".")[2]
    finally:
        logs._unbind_task()
