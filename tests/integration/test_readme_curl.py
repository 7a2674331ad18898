"""The original README's curl calls against a live stack started the way ``make run`` does.

``flask --app wsgi paas setup``, then gunicorn and a Celery worker, all on an isolated data dir,
queue prefix and port; the calls run with the real ``curl`` binary from the example folders
(for ``@service-template.json``), each with the bearer token added (DESIGN.md section 4).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN, EXAMPLES, ROOT, Worker, free_port, wait_until

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
PREFIX = "/bigdata/api/v1"

# DESIGN.md section 4, verbatim but for $API; each runs with the auth header added.
REGISTER = [
    '''curl -X POST $API/services -d '{"name":"gluster", "version":"3.7.11", "description": "GlusterFS parallel filesystem cluster"}' -H "Content-type: application/json"''',  # noqa: E501
    '''curl -X PUT $API/services/gluster/3.7.11/template --data-binary @service-template.json -H "Content-type: application/json"''',  # noqa: E501
    '''curl -X PUT $API/services/gluster/3.7.11/options --data-binary @options.json -H "Content-type: application/json"''',  # noqa: E501
    '''curl -X PUT $API/services/gluster/3.7.11/orquestrator --data-binary @orquestrator.py -H "Content-type: application/json"''',  # noqa: E501
]
LAUNCH_GLUSTER = """curl -H "Content-type: application/json" -X POST -d '{"size": 2, "disks": 2}' $API/services/gluster/3.7.11"""  # noqa: E501
LAUNCH_CDH = '''curl -X POST $API/services/cdh/5.7.2 -d '{"slaves.number": 3}' -H "Content-type: application/json"'''  # noqa: E501


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Stack:
    api: str
    env: dict[str, str]
    web_log: Path

    def get(self, path: str) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.api + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.load(exc)

    def curl(self, command: str, cwd: Path) -> tuple[int, dict]:
        """Run one README curl line (with the auth header); (HTTP status, JSON body)."""
        args = shlex.split(command.replace("$API", self.api))
        assert args[0] == "curl"
        args[0] = shutil.which("curl")
        args += ["-H", f"Authorization: Bearer {ADMIN_TOKEN}", "-sS", "-w", "\n%{http_code}"]
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        body, _, code = done.stdout.rpartition("\n")
        return int(code), json.loads(body)

    def flask(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", "paas", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def wait_healthy(stack: Stack, web: subprocess.Popen) -> None:
    def healthy() -> bool:
        if web.poll() is not None:
            raise AssertionError(f"gunicorn exited: {stack.web_log.read_text()[-3000:]}")
        try:
            return stack.get("/health")[0] == 200
        except OSError:
            return False

    wait_until(healthy, "gunicorn to answer /health", timeout=60, interval=0.2)


@pytest.fixture
def stack(env, tmp_path) -> Iterator[Stack]:
    """setup, gunicorn and a worker on ``env``, as ``make run`` starts them."""
    if shutil.which("curl") is None:
        pytest.skip("needs the curl binary")
    port = free_port()
    run_env = {**os.environ, **env, "PAAS_PORT": str(port)}
    live = Stack(f"http://127.0.0.1:{port}{PREFIX}", run_env, tmp_path / "web.log")
    assert "database ready" in live.flask("setup")
    with live.web_log.open("ab") as log:
        web = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--graceful-timeout",
                "10",
                "--access-logfile",
                "-",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=run_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = None
    try:
        wait_healthy(live, web)
        worker = Worker(run_env, tmp_path / "worker.log").start()
        yield live
    finally:
        if worker is not None:
            worker.stop()
        stop_group(web)


def test_original_readme_calls_register_and_launch(stack):
    output = stack.flask("load-hosts", "examples/inventory.json")
    assert [line.split(":")[0] for line in output.splitlines()] == [
        "network demo",
        "host node01",
        "host node02",
        "host node03",
        "host node04",
        "examples/inventory.json",
    ], output

    gluster = EXAMPLES / "gluster" / "3.7.11"
    codes = [stack.curl(command, gluster)[0] for command in REGISTER]
    cdh = EXAMPLES / "cdh" / "5.7.2"
    cdh_codes = [
        stack.curl(
            command.replace("gluster", "cdh")
            .replace("3.7.11", "5.7.2")
            .replace(
                "GlusterFS parallel filesystem cluster",
                "Hadoop cluster based on Cloudera CDH 5.7.2",
            ),
            cdh,
        )[0]
        for command in REGISTER
    ]
    gluster_code, gluster_instance = stack.curl(LAUNCH_GLUSTER, gluster)
    cdh_code, cdh_instance = stack.curl(LAUNCH_CDH, cdh)
    assert [*codes, gluster_code, cdh_code] == [201, 200, 200, 200, 202, 202]
    assert cdh_codes == [201, 200, 200, 200]
    assert gluster_instance["service"] == "gluster" and gluster_instance["status"] == "pending"
    assert cdh_instance["options"] == {"slaves.number": 3}

    code, detail = stack.get("/services/gluster/3.7.11")
    assert code == 200, detail
    assert detail["name"] == "gluster" and detail["version"] == "3.7.11"

    def running(instance_id: str) -> dict | None:
        code, body = stack.get(f"/instances/{instance_id}")
        assert code == 200, body
        assert body["status"] != "failed", body.get("error")
        return body if body["status"] == "running" else None

    gluster_body = wait_until(lambda: running(gluster_instance["id"]), "gluster running")
    cdh_body = wait_until(lambda: running(cdh_instance["id"]), "cdh running")
    assert sorted(n["name"] for n in gluster_body["nodes"]) == ["gluster0", "gluster1"]
    assert sorted(n["name"] for n in cdh_body["nodes"]) == ["master0", "slave0", "slave1", "slave2"]
    assert all(node["host"] for node in [*gluster_body["nodes"], *cdh_body["nodes"]])

    code, logs = stack.get(f"/instances/{cdh_instance['id']}/logs")
    assert code == 200
    lines = [line["line"] for line in logs["lines"]]
    assert f"cdh cluster {cdh_instance['id']} started: 3 datanodes, 3 nodemanagers" in lines
    assert "Traceback" not in stack.web_log.read_text()
