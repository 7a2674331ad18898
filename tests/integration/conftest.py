"""The live stack of the integration tests that talk HTTP to a real server with real curl."""

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

from config import Config
from tests.conftest import (
    ADMIN_TOKEN,
    ROOT,
    Worker,
    free_port,
    remove_deployment_nodes,
    wait_until,
)

BIN = Path(sys.executable).parent
PREFIX = "/bigdata/api/v1"


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
    #: what the last curl wrote to stderr (with -v: the request headers it sent)
    last_stderr: str = ""
    agents_log: Path | None = None

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
        self.last_stderr = done.stderr
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


def load_demo_inventory(stack: Stack, pool: tuple[str, str], folder: Path) -> str:
    """``paas load-hosts examples/inventory.json`` with the network ``demo`` made first on
    ``pool`` (cidr, gateway), a range of the test's own: the file's demo range stays the user's.
    Returns what load-hosts printed."""
    cidr, gateway = pool
    own = folder / "demo-pool.json"
    own.write_text(json.dumps({"networks": [{"name": "demo", "cidr": cidr, "gateway": gateway}]}))
    stack.flask("load-hosts", str(own))
    return stack.flask("load-hosts", "examples/inventory.json")


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
def live_stack(env, tmp_path) -> Iterator[Stack]:
    """setup, gunicorn, a worker and the agents of node01..node04 on ``env``, as ``make run``
    starts them."""
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
    workers: list[Worker] = []
    agents = None
    try:
        wait_healthy(live, web)
        # the Procfile's worker and orquestrator processes: a run step waits for the agents'
        # reports, which a pipeline worker records
        for queue in ("pipeline", "orquestrator"):
            log_path = tmp_path / f"{queue}.log"
            workers.append(Worker(run_env, log_path, queues=(queue,)).start())
        # the Procfile's agent line: one agent per host of PAAS_AGENT_HOSTS (node01..node04)
        with (tmp_path / "agents.log").open("ab") as log:
            agents = subprocess.Popen(
                [sys.executable, "-m", "bigdata_paas.agent"],
                cwd=ROOT,
                env=run_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        live.agents_log = tmp_path / "agents.log"
        yield live
    finally:
        if agents is not None:
            stop_group(agents)
        for worker in workers:
            worker.stop()
        stop_group(web)
        remove_deployment_nodes(Path(env["PAAS_DATA_DIR"]), Config.from_env(run_env).deployment)
