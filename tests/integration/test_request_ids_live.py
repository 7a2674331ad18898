"""One launch followed by its request id: from gunicorn's lines to every pipeline step's.

gunicorn as the Procfile starts it (``-c config/gunicorn.py``) and a real Celery worker, both
writing JSON lines (the default ``PAAS_LOG_FORMAT``). The launch sends ``X-Request-ID``; the
answer returns it, the web's lines carry it, and so does every line the worker writes while
running the steps of that launch, each with the instance, the task and the step.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from bench.load import stop_group
from tests.api.support import API, TINY_OPTIONS, TINY_ORQUESTRATOR, TINY_TEMPLATE, add_service
from tests.conftest import (
    ADMIN_TOKEN,
    ROOT,
    Worker,
    bearer,
    free_port,
    load_example_hosts,
    make_app,
    wait_until,
)

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def json_lines(path: Path) -> list[dict]:
    """The JSON objects among a log's lines (a traceback's continuation is not one)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def http(port: int, method: str, path: str, body=None, headers=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{API}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={**bearer(ADMIN_TOKEN), "Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, dict(answer.headers), json.load(answer)


@pytest.fixture
def web(env, tmp_path):
    port = free_port()
    log = tmp_path / "web.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "wsgi:app"],
            cwd=ROOT,
            env={**env, "PATH": f"{BIN}:/usr/bin:/bin", "PAAS_PORT": str(port)}
            | {"PAAS_WEB_WORKERS": "1", "PAAS_WEB_THREADS": "8"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def answers() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return http(port, "GET", "/livez")[0] == 200
        except OSError:
            return False

    wait_until(answers, lambda: log.read_text()[-3000:], timeout=60)
    yield port, log
    stop_group(process)


def test_a_launch_is_followed_by_its_request_id(env, tmp_path, web):
    app = make_app(env)
    client = app.test_client()
    add_service(
        client,
        bearer(ADMIN_TOKEN),
        "tiny",
        "1.0",
        template=TINY_TEMPLATE,
        options=TINY_OPTIONS,
        orquestrator=TINY_ORQUESTRATOR,
    )
    load_example_hosts(client, bearer(ADMIN_TOKEN))
    app.extensions["paas"].db.dispose()
    worker = Worker(env, tmp_path / "worker.log").start()
    try:
        port, web_log = web
        request_id = f"trace-{uuid.uuid4().hex}"
        status, headers, body = http(
            port, "POST", "/services/tiny/1.0", {"n": 1}, {"X-Request-ID": request_id}
        )
        assert status == 202 and headers["X-Request-ID"] == request_id
        instance_id = body["id"]

        def settled() -> str | None:
            now = http(port, "GET", f"/instances/{instance_id}")[2]["status"]
            return now if now in ("running", "failed") else None

        assert wait_until(settled, "the launch to settle", timeout=90) == "running"
        # another request gets an id of its own, answered and logged
        _, other, _ = http(port, "GET", f"/instances/{instance_id}")
        assert other["X-Request-ID"] != request_id and len(other["X-Request-ID"]) == 32
    finally:
        worker.stop()

    web_lines = [line for line in json_lines(web_log) if line.get("request_id") == request_id]
    assert web_lines, web_log.read_text()[-3000:]
    for line in web_lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
    messages = [line["message"] for line in web_lines]
    assert any(f"POST {API}/services/tiny/1.0" in m and " 202 " in m for m in messages), messages
    assert any(line.get("instance_id") == instance_id for line in web_lines), web_lines

    worker_lines = [
        line for line in json_lines(tmp_path / "worker.log") if line.get("request_id") == request_id
    ]
    steps = {line.get("step") for line in worker_lines}
    assert {"prepare", "submit", "queue", "schedule", "run"} <= steps, worker_lines
    for line in worker_lines:
        assert line["instance_id"] == instance_id, line
        assert line["task"] == f"pipeline.{line['step']}", line
        assert {"time", "level", "logger", "message"} <= set(line), line
    moved = {line["message"] for line in worker_lines if line["logger"].endswith("transitions")}
    assert f"instance {instance_id}: running by run" in moved, moved
    # nothing of this launch is logged under another request's id
    others = [
        line
        for line in json_lines(tmp_path / "worker.log")
        if line.get("instance_id") == instance_id and line.get("request_id") != request_id
    ]
    assert others == [], others
