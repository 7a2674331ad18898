"""Stopping the platform stops no cluster.

The platform runs as ``make run`` runs it: ``flask --app wsgi paas setup``, then ``honcho
start`` on the Procfile (web, worker, orquestrator, flower, beat and the agents of node01..04),
on the embedded broker and SQLite. A gluster launched there keeps running while the platform is
stopped (Ctrl-C: SIGINT to honcho's process group) and is found again, untouched, when it
starts again; ``paas destroy-all --wait`` then removes it and everything it started: no node
process, no address, nothing listening. The nodes run with the process driver on a pool of
this test's own (a private 10.x range as root: the driver adds the addresses; else loopback).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import (
    ADMIN_TOKEN,
    EXAMPLES,
    ROOT,
    ask_node,
    free_port,
    local_link,
    loopback_prefix,
    private_pool,
    remove_deployment_nodes,
    wait_until,
)

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


class Platform:
    """``make run``'s processes on one data dir, port and queue prefix of this test's own."""

    def __init__(self, data_root: Path, log_dir: Path) -> None:
        self.port, self.flower_port = free_port(), free_port()
        self.log_dir = log_dir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PAAS_")},
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",  # as the Makefile
            "PAAS_DATA_DIR": str(data_root / "var"),
            # the default, written out: the agents must not get it
            "PAAS_DATABASE_URL": f"sqlite:///{data_root / 'var' / 'paas.sqlite3'}",
            "PAAS_PORT": str(self.port),
            "PAAS_FLOWER_PORT": str(self.flower_port),
            "PAAS_ADMIN_TOKEN": ADMIN_TOKEN,
            "PAAS_QUEUE_PREFIX": f"r{uuid.uuid4().hex[:10]}.",
            "PAAS_NODE_DRIVER": "process",
            "PAAS_AGENT_HEARTBEAT": "1",
            "PAAS_HEALTH_TIMEOUT": "20",
            "PAAS_WEB_WORKERS": "1",
        }
        self.api = f"http://127.0.0.1:{self.port}/bigdata/api/v1"
        self.honcho: subprocess.Popen | None = None
        self.starts = 0

    @property
    def data_dir(self) -> Path:
        return Path(self.env["PAAS_DATA_DIR"])

    def flask(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", "paas", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
        request = urllib.request.Request(
            self.api + path,
            data=data.encode() if isinstance(data, str) else data,
            method=method,
            headers={
                "Authorization": f"Bearer {ADMIN_TOKEN}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.load(exc)

    def start(self, scale: str = "") -> None:
        """``make run`` (``SCALE=worker=3``: ``scale``): setup, then honcho on the Procfile;
        wait for the API."""
        setup = self.flask("setup")
        assert setup.returncode == 0, setup.stdout + setup.stderr
        assert self.env.get("PAAS_AGENT_HOSTS") == "" or (
            "agents for node01, node02, node03, node04 run nodes with the process driver"
            in setup.stdout
        )
        self.starts += 1
        log = (self.log_dir / f"honcho-{self.starts}.log").open("ab")
        self.honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", *(["-c", scale] if scale else [])],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the terminal's, for Ctrl-C
        )
        log.close()

        def healthy() -> bool:
            assert self.honcho.poll() is None, self.log()
            with contextlib.suppress(OSError):
                return self.call("GET", "/health")[0] == 200
            return False

        wait_until(healthy, lambda: f"the API to answer: {self.log()}", timeout=120)

    def log(self) -> str:
        return (self.log_dir / f"honcho-{self.starts}.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Ctrl-C: SIGINT to honcho's process group; wait until every process of the platform
        is gone (honcho runs each Procfile line in a session of its own)."""
        if self.honcho is None or self.honcho.poll() is not None:
            return
        os.killpg(self.honcho.pid, signal.SIGINT)
        try:
            self.honcho.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"honcho did not stop on Ctrl-C: {self.log()}") from None
        wait_until(
            lambda: not platform_processes(self.data_dir),
            lambda: f"every process of the platform to exit: {platform_processes(self.data_dir)}",
            timeout=60,
        )

    def kill(self) -> None:
        """The safety net: SIGKILL honcho and every process of this platform, whatever session
        it runs in (never the nodes: their environment names no data dir)."""
        if self.honcho is not None and self.honcho.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.honcho.pid, signal.SIGKILL)
            self.honcho.wait()
        for pid in platform_processes(self.data_dir):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def platform_processes(data_dir: Path) -> list[int]:
    """Live processes started with ``PAAS_DATA_DIR=<data_dir>`` (the platform's; not this
    test's own process)."""
    wanted = f"PAAS_DATA_DIR={data_dir}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                if wanted in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    stat = Path(f"/proc/{entry}/stat").read_bytes()
                    if stat.rsplit(b")", 1)[-1].split()[0] != b"Z":
                        found.append(int(entry))
    return found


def refused(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def node_processes(data_dir: Path) -> list[int]:
    """Live processes whose command runs from the agents' state (the nodes' serve.py)."""
    marker = os.fsencode(str(data_dir / "agents"))
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if marker in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
    return found


def agent_environments(data_dir: Path) -> dict[int, dict[str, str]]:
    """The environment each agent process (``bigdata_paas.agent --host``) of the deployment at
    ``data_dir`` was started with."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                if b"bigdata_paas.agent" in args and b"--host" in args:
                    raw = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
                    pairs = (item.decode(errors="replace").partition("=") for item in raw if item)
                    environ = {k: v for k, _eq, v in pairs}
                    if environ.get("PAAS_DATA_DIR") == str(data_dir):
                        found[int(entry)] = environ
    return found


@pytest.fixture
def platform(data_root, tmp_path):
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (ip)")
    platform = Platform(data_root, tmp_path)
    try:
        yield platform
    finally:
        platform.kill()
        remove_deployment_nodes(platform.data_dir, platform.env["PAAS_QUEUE_PREFIX"].strip("."))


def test_a_cluster_outlives_its_platform_and_destroy_all_leaves_nothing(platform, tmp_path):
    network = f"r{uuid.uuid4().hex[:8]}"
    if os.geteuid() == 0:
        cidr, gateway = private_pool()
    else:
        prefix = loopback_prefix()
        cidr, gateway = f"{prefix}.0/24", f"{prefix}.1"
    inventory = json.loads((EXAMPLES / "inventory.json").read_text())
    inventory["networks"] = [{"name": network, "cidr": cidr, "gateway": gateway}]
    for host in inventory["hosts"]:
        host["networks"] = [network]
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))

    platform.start()
    loaded = platform.flask("load-hosts", str(tmp_path / "inventory.json"))
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    # as a user who looks at GET /hosts: every host's agent has reported (it is managed)
    wait_until(
        lambda: all(h["agent"] for h in platform.call("GET", "/hosts")[1]["hosts"]),
        lambda: f"every agent's first report: {platform.log()}",
        timeout=90,
    )
    gluster = EXAMPLES / "gluster" / "3.7.11"
    service = json.loads((gluster / "service.json").read_text())
    assert platform.call("POST", "/services", service)[0] == 201
    for part, name in (
        ("template", "service-template.json"),
        ("options", "options.json"),
        ("orquestrator", "orquestrator.py"),
    ):
        code, body = platform.call(
            "PUT", f"/services/gluster/3.7.11/{part}", (gluster / name).read_bytes()
        )
        assert code == 200, body
    code, body = platform.call(
        "POST", "/services/gluster/3.7.11", {"size": 2, "disks": 1, "network": network}
    )
    assert code == 202, body
    instance_id = body["id"]

    def settled() -> dict | None:
        body = platform.call("GET", f"/instances/{instance_id}")[1]
        return body if body["status"] in ("running", "failed") else None

    body = wait_until(settled, lambda: platform.log(), timeout=120)
    assert body["status"] == "running", body.get("error")
    # the agents (started by honcho with the platform's whole environment) hold no secret
    agents = agent_environments(platform.data_dir)
    assert len(agents) == 4, agents
    for environ in agents.values():
        assert not {"PAAS_DATABASE_URL", "PAAS_ADMIN_TOKEN"} & set(environ), sorted(environ)
    nodes = {n["name"]: n for n in body["nodes"]}
    for node in nodes.values():
        assert node["runtime"]["state"] == "running" and node["runtime"]["driver"] == "process"
        assert local_link(node["address"]), node  # the driver made the address this host's
        answer = ask_node(node["address"], 24007)
        assert (answer["node"], answer["instance"]) == (node["name"], instance_id), answer

    # Ctrl-C: the platform stops, the cluster does not
    before = {h["agent"]["pid"] for h in platform.call("GET", "/hosts")[1]["hosts"]}
    platform.stop()
    assert refused(platform.port) and refused(platform.flower_port)
    for node in nodes.values():
        assert ask_node(node["address"], 24007)["node"] == node["name"]

    # make run again: the agents report what they run (their reconcile), the instance is
    # still running, its nodes untouched
    platform.start()

    def reports() -> dict[str, int]:
        hosts = platform.call("GET", "/hosts")[1]["hosts"]
        return {h["agent"]["pid"]: h["agent"]["last_seen"] for h in hosts}

    first = wait_until(
        lambda: (r := reports()) and before.isdisjoint(r) and r,
        "every agent to report after the restart",
        timeout=60,
    )
    wait_until(  # and once more: every report since the restart reconciled the nodes
        lambda: all(seen > first[pid] for pid, seen in reports().items()),
        "a second report of every agent",
        timeout=30,
    )
    body = platform.call("GET", f"/instances/{instance_id}")[1]
    assert body["status"] == "running", body
    for node in body["nodes"]:
        before = nodes[node["name"]]["runtime"]["runtime_id"]
        assert node["runtime"]["runtime_id"] == before  # the same process, never restarted
        assert ask_node(node["address"], 24007)["instance"] == instance_id
    events = platform.call("GET", f"/instances/{instance_id}/events")[1]["events"]
    assert [e["status"] for e in events if e["status"] in ("degraded", "destroying")] == []

    # one command removes every instance and what it started
    destroyed = platform.flask("destroy-all", "--wait", "--timeout", "120")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert f"instance {instance_id}: destroyed" in destroyed.stdout
    assert "no node of this deployment is left on this machine" in destroyed.stdout
    assert platform.call("GET", f"/instances/{instance_id}")[1]["status"] == "destroyed"
    for node in nodes.values():
        # its address went with it (never connect then), or nothing answers there
        assert not local_link(node["address"]) or ask_node(node["address"], 24007) is None
    assert node_processes(platform.data_dir) == []
    assert not list(platform.data_dir.glob(f"agents/*/disks/data/*/{instance_id}"))

    platform.stop()
    assert refused(platform.port) and refused(platform.flower_port)
    assert node_processes(platform.data_dir) == []
