"""A deployment with real host agents: the pipeline's worker, a beat, and one agent process per
host, on RabbitMQ and PostgreSQL; nodes run as podman containers or as processes.

Each test's hosts, network and containers carry names of its own and are removed afterwards.
Nodes get addresses on a subnet that exists only on this machine: a podman bridge made for
the test (podman driver), or a 127.x.y.0/24 loopback range (process driver).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import (
    REQUIRE_SERVICES,
    ROOT,
    Worker,
    ask_node,
    loopback_prefix,
    make_app,
    private_pool,
    remove_deployment_nodes,
    wait_until,
)

API = "/bigdata/api/v1"
IMAGE = "localhost/paas-node:1"
#: three nodes, one disk and one address each, serving their own config on port 8080
TEMPLATE = """{% set comma = joiner(",") %}
{"nodes": {
{% for i in range(opts['n']) %}{{ comma() }}
  "node{{ i }}": {"cpu": 1, "mem": {{ opts['mem'] }}, "docker_image": {{ opts['image']|tojson }},
    "docker_opts": {{ opts['docker_opts']|tojson }},
    "disks": {"d0": {"destination": "/data/0", "mode": "rw"}},
    "networks": {"eth0": {"networkname": {{ opts['network']|tojson }}, "type": "dynamic"}},
    "check_ports": [8080]}
{% endfor %}
}, "services": {}}
"""
#: the orquestrator checks that every node it is handed runs and answers as itself
ORQUESTRATOR = """import json, os, sys, urllib.request
doc = json.load(open(os.environ["PAAS_INSTANCE_FILE"]))
if sys.argv[1] == "start":
    for node in doc["nodes"]:
        assert node["runtime"]["state"] == "running", node
        print(node["name"], "runs as", node["runtime"]["name"], "on", node["host"])
"""


def podman_ready() -> bool:
    from bigdata_paas.nodes.driver import podman_works

    return podman_works()


class Agent:
    """One host's agent process: the broker URL and its host name, nothing else."""

    def __init__(self, env: dict[str, str], host: str, log_path: Path) -> None:
        self.host, self.log_path = host, log_path
        self.env = {
            k: v
            for k, v in {**os.environ, **env}.items()
            if k not in ("PAAS_DATABASE_URL", "PAAS_ADMIN_TOKEN")
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> Agent:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bigdata_paas.agent", "--host", self.host],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_until(
            lambda: self.process.poll() is not None or b" ready." in self.log_path.read_bytes(),
            f"the agent of {self.host}",
        )
        assert self.process.poll() is None, self.log_path.read_text()[-3000:]
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class Beat:
    """celery beat: the sweep every PAAS_SWEEP_INTERVAL seconds (hosts going down, too)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        data = Path(env["PAAS_DATA_DIR"])
        data.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat"],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


class Stack:
    """The app (for API calls), a worker, a beat and the agents of ``hosts``."""

    def __init__(self, env, tmp_path, driver: str, hosts: int = 3) -> None:
        self.env, self.tmp_path, self.driver = env, tmp_path, driver
        self.uid = uuid.uuid4().hex[:6]
        self.hosts = [f"a{self.uid}-{i}" for i in range(1, hosts + 1)]
        self.network = f"t{self.uid}"
        if driver == "podman":
            self.cidr_prefix = private_pool()[0].rsplit(".", 1)[0]
        else:
            self.cidr_prefix = loopback_prefix()
        self.app = make_app(env)
        self.client = self.app.test_client()
        self.agents: dict[str, Agent] = {}
        self.worker = Worker(env, tmp_path / "worker.log").start()
        self.beat = Beat(env, tmp_path / "beat.log")

    @property
    def rt(self):
        return self.app.extensions["paas"]

    def start_agent(self, host: str) -> Agent:
        self.agents[host] = Agent(self.env, host, self.tmp_path / f"agent-{host}.log").start()
        return self.agents[host]

    def setup(self, admin) -> None:
        network = {
            "name": self.network,
            "cidr": f"{self.cidr_prefix}.0/24",
            "gateway": f"{self.cidr_prefix}.1",
        }
        assert self.client.post(f"{API}/networks", json=network, headers=admin).status_code == 201
        for name in self.hosts:
            host = {
                "name": name,
                "address": "127.0.0.1",
                "cpu": 4,
                "mem": 2048,
                "disks": [
                    {"name": "sdb", "type": "hdd", "size": 100},
                    {"name": "sdc", "type": "hdd", "size": 100},
                ],
                "networks": [self.network],
            }
            response = self.client.post(f"{API}/hosts", json=host, headers=admin)
            assert response.status_code == 201, response.get_json()
            self.start_agent(name)
        # every agent reported: its host is managed from now on
        wait_until(
            lambda: all(h["agent"] for h in self.host_rows(admin)), "every agent's first report"
        )
        response = self.client.post(
            f"{API}/services", json={"name": "box", "version": "1"}, headers=admin
        )
        assert response.status_code == 201
        options = {
            "required": {"n": 3},
            "optional": {
                "mem": 256,
                "image": IMAGE,
                "docker_opts": "",
                "network": self.network,
            },
            "descriptions": {
                "n": "nodes",
                "mem": "MB per node",
                "image": "node image",
                "docker_opts": "runtime options",
                "network": "address pool",
            },
        }
        for part, body in (
            ("template", TEMPLATE),
            ("options", json.dumps(options)),
            ("orquestrator", ORQUESTRATOR),
        ):
            response = self.client.put(
                f"{API}/services/box/1/{part}",
                data=body,
                content_type="application/json",
                headers=admin,
            )
            assert response.status_code == 200, response.get_json()

    def host_rows(self, admin) -> list[dict]:
        hosts = self.client.get(f"{API}/hosts", headers=admin).get_json()["hosts"]
        return [h for h in hosts if h["name"] in self.hosts]

    def host(self, admin, name: str) -> dict:
        return self.client.get(f"{API}/hosts/{name}", headers=admin).get_json()

    def instance(self, admin, instance_id: str) -> dict:
        return self.client.get(f"{API}/instances/{instance_id}", headers=admin).get_json()

    def launch(self, admin, **options) -> str:
        response = self.client.post(f"{API}/services/box/1", json=options, headers=admin)
        assert response.status_code == 202, response.get_json()
        return response.get_json()["id"]

    def wait_status(self, admin, instance_id: str, wanted: set[str], timeout=90) -> dict:
        def reached():
            body = self.instance(admin, instance_id)
            return body if body["status"] in wanted else None

        return wait_until(reached, lambda: self.instance(admin, instance_id), timeout=timeout)

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.kill()
        self.beat.stop()
        self.worker.stop()
        remove_deployment_nodes(Path(self.env["PAAS_DATA_DIR"]), self.rt.config.deployment)
        self.rt.db.dispose()


def podman(*args: str, check: bool = True) -> str:
    from bigdata_paas.nodes.podman_cli import podman_env

    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=podman_env(), timeout=120
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done.stdout


def node_answer(address: str, port: int) -> dict | None:
    """What a node serves on ``port``: its own config (JSON), or None."""
    return ask_node(address, port, timeout=2)


@pytest.fixture(params=["podman", "process"])
def stack(request, services_env, tmp_path, admin):
    driver = request.param
    if driver == "podman" and not podman_ready():
        if REQUIRE_SERVICES:
            pytest.fail("PAAS_REQUIRE_SERVICES=1 but podman does not work here")
        pytest.skip("needs podman")
    if driver == "podman":
        from bigdata_paas.nodes.image import ensure_image

        ensure_image()
    env = {
        **services_env,
        "PAAS_NODE_DRIVER": driver,
        "PAAS_AGENT_HEARTBEAT": "0.5",
        "PAAS_HOST_DOWN_AFTER": "3",
        "PAAS_SWEEP_INTERVAL": "1",
        "PAAS_NODE_START_TIMEOUT": "60",
        "PAAS_NODE_STOP_TIMEOUT": "20",
        "PAAS_HEALTH_TIMEOUT": "20",
    }
    stack = Stack(env, tmp_path, driver)
    try:
        stack.setup(admin)
        yield stack
    finally:
        stack.stop()
        with contextlib.suppress(Exception):
            cleanup_queues(env, stack.hosts)


def cleanup_queues(env: dict[str, str], hosts: list[str]) -> None:
    from kombu import Connection

    prefix = env["PAAS_QUEUE_PREFIX"]
    with Connection(env["PAAS_BROKER_URL"], connect_timeout=5) as conn:
        for name in [f"host.{h}" for h in hosts]:
            with contextlib.suppress(Exception), conn.channel() as channel:
                channel.queue_delete(prefix + name)
                channel.exchange_delete(prefix + name)


def settle(seconds: float) -> None:
    """Give the agents a few heartbeats (a wait for a negative: nothing may happen)."""
    time.sleep(seconds)
