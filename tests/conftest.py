"""Shared fixtures: an isolated data dir per test, the app on it, and real worker processes.

Tests that need RabbitMQ and PostgreSQL skip with a reason when those are not
reachable, and fail instead when PAAS_REQUIRE_SERVICES=1 (CI sets it).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bigdata_paas import create_app
from bigdata_paas.cli import migrate
from bigdata_paas.operations.users import create_user, ensure_admin
from config import TestConfig

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ADMIN_TOKEN = "test-admin-token-" + "x" * 24
REQUIRE_SERVICES = os.environ.get("PAAS_REQUIRE_SERVICES") == "1"


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The PAAS_* environment of a test deployment rooted at ``data_dir``."""
    env = {
        "PAAS_DATA_DIR": str(data_dir),
        "PAAS_ADMIN_TOKEN": ADMIN_TOKEN,
        "PAAS_ORQUESTRATOR_TIMEOUT": "20",
        "PAAS_HEALTH_TIMEOUT": "5",
        "PAAS_RENDER_TIMEOUT": "2",
        "PAAS_PUBLISH_TIMEOUT": "1",
        "PAAS_QUEUE_PREFIX": f"t{uuid.uuid4().hex[:10]}.",
    }
    env.update(extra)
    return env


def make_app(env: dict[str, str]):
    config = TestConfig.from_env(env)
    migrate(config.database_url)
    app = create_app(config)
    ensure_admin(app.extensions["paas"], ADMIN_TOKEN)
    return app


@pytest.fixture
def data_root() -> Iterator[Path]:
    """A folder any user may traverse (not list), removed after the test.

    Orquestrators run as ``nobody`` when tests run as root, and pytest's tmp_path sits in a
    0700 folder: below this one their work dirs stay inside the test's data dir.
    """
    root = Path(tempfile.mkdtemp(prefix="paas-test-"))
    os.chmod(root, 0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def env(data_root) -> dict[str, str]:
    return base_env(data_root / "var")


@pytest.fixture
def app(env):
    app = make_app(env)
    yield app
    app.extensions["paas"].db.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin() -> dict[str, str]:
    return bearer(ADMIN_TOKEN)


@pytest.fixture
def make_user(app):
    """Create a user with role ``user`` and return its auth headers."""

    def make(name: str | None = None, role: str = "user") -> dict[str, str]:
        rt = app.extensions["paas"]
        return bearer(
            create_user(rt, name or f"u{uuid.uuid4().hex[:8]}", role, actor="admin")["token"]
        )

    return make


def register_example(client, headers, name: str, version: str) -> None:
    """Register one of the example services through the API, as the README does."""
    folder = EXAMPLES / name / version
    service = json.loads((folder / "service.json").read_text())
    assert client.post("/bigdata/api/v1/services", json=service, headers=headers).status_code == 201
    for part, filename in (
        ("template", "service-template.json"),
        ("options", "options.json"),
        ("orquestrator", "orquestrator.py"),
    ):
        response = client.put(
            f"/bigdata/api/v1/services/{name}/{version}/{part}",
            data=(folder / filename).read_bytes(),
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 200, response.get_json()


def loopback_prefix() -> str:
    """A random ``127.x.y`` of the tests' own loopback pools (x in 22..250).

    Addresses tests give nodes never meet what a user runs on this machine: the demo pool is
    10.20.0.0/24 (examples/inventory.json), the README's loopback demo 127.20.0.0/16 and its
    by-hand example 127.21.0.x; containers' tests use 10.200-254.x.0/24 bridges of their own.
    """
    return f"127.{random.randint(22, 250)}.{random.randint(0, 255)}"


def local_link(address: str) -> bool:
    """The address is on a link of this machine (``ip route get`` names no gateway): the only
    addresses a test may connect to."""
    route = subprocess.run(["ip", "route", "get", address], capture_output=True, text=True)
    return route.returncode == 0 and " via " not in route.stdout


def private_pool() -> tuple[str, str]:
    """(cidr, gateway) of a 10.200-254.x.0/24 that is no network of this machine yet (its
    addresses would leave through the default route): the tests' own non-loopback pools, for
    podman bridges and the process driver's added addresses."""
    for _ in range(200):
        prefix = f"10.{random.randint(200, 254)}.{random.randint(0, 255)}"
        if not local_link(f"{prefix}.1") and not local_link(f"{prefix}.254"):
            return f"{prefix}.0/24", f"{prefix}.1"
    raise AssertionError("no free 10.200-254.x.0/24 on this machine")


def node_pool() -> tuple[str, str]:
    """A pool of the tests' own that this machine's agents can give nodes with the driver they
    would pick: a private one where podman works or as root, else loopback."""
    from bigdata_paas.nodes.driver import podman_works

    if os.geteuid() == 0 or podman_works():
        return private_pool()
    prefix = loopback_prefix()
    return f"{prefix}.0/24", f"{prefix}.1"


def ask_node(address: str, port: int, timeout: float = 3) -> dict | None:
    """What a node serves on ``port`` (its configuration), after checking that its address is
    on a local link; None when nothing answers or the answer is not a node's."""
    assert local_link(address), f"{address} is not on a link of this machine"
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    except OSError:
        return None
    raw = b"".join(chunks)
    try:
        answer = json.loads(raw.split(b"\r\n\r\n", 1)[-1])
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def remove_deployment_nodes(data_dir: Path, deployment: str) -> None:
    """The safety net of a test that ran agents: end every node the process drivers under
    ``data_dir/agents`` recorded (and take away the addresses they added), and remove every
    podman container and network labelled with ``deployment`` (``paas.deployment``)."""
    from bigdata_paas.nodes import addresses

    for record in (data_dir / "agents").glob("*/state/records/*.json"):
        with contextlib.suppress(ValueError, OSError, KeyError):
            data = json.loads(record.read_text())
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(data["pid"], signal.SIGKILL)
            for network, address in data.get("attached") or []:
                addresses.detach(network, address)
    if shutil.which("podman") is None:
        return
    from bigdata_paas.nodes.podman_cli import podman_env

    def podman(*args: str) -> str:
        done = subprocess.run(
            ["podman", *args], capture_output=True, text=True, env=podman_env(), timeout=120
        )
        return done.stdout

    label = f"label=paas.deployment={deployment or 'default'}"
    ids = podman("ps", "-aq", "--filter", label).split()
    if ids:
        podman("rm", "-f", "-t", "0", *ids)
    nets = podman("network", "ls", "-q", "--filter", label).split()
    if nets:
        podman("network", "rm", "-f", *nets)


def load_example_hosts(client, headers) -> None:
    """Load examples/inventory.json (the `demo` address pool, then the hosts) via the API.

    The pool moves to a random 127.x.y.0/24 of the tests' own (``loopback_prefix``), so that
    node servers of this test never meet another deployment's on this machine (a `make run`
    demo, another test's leftovers).
    """
    inventory = json.loads((EXAMPLES / "inventory.json").read_text())
    prefix = loopback_prefix()
    for network in inventory["networks"]:
        network.update(cidr=f"{prefix}.0/24", gateway=f"{prefix}.1")
        response = client.post("/bigdata/api/v1/networks", json=network, headers=headers)
        assert response.status_code == 201, response.get_json()
    for host in inventory["hosts"]:
        response = client.post("/bigdata/api/v1/hosts", json=host, headers=headers)
        assert response.status_code == 201, response.get_json()


class Worker:
    """A real Celery worker process consuming both platform queues."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        concurrency: int = 2,
        queues: tuple[str, ...] = ("pipeline", "orquestrator"),
    ) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        prefix = env.get("PAAS_QUEUE_PREFIX", "")
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "-Q",
            ",".join(prefix + q for q in queues),
            "-n",
            self.name,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ]
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            if b" ready." in self.log_path.read_bytes():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        # Example node servers outlive `start` on purpose; not the test.
        from tests.examples.helpers import kill_leftover_servers

        kill_leftover_servers(Path(self.env["PAAS_DATA_DIR"]))
        if self.process:
            # A warm shutdown takes ~5 s a worker, most of the suite's time; what a test's
            # worker leaves unacknowledged dies with the test's own broker and queues.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def worker(env, tmp_path):
    worker = Worker(env, tmp_path / "worker.log").start()
    yield worker
    worker.stop()


def wait_for_status(
    client, headers, instance_id: str, wanted: set[str], timeout: float = 60
) -> dict:
    """Poll the instance until its status is one of ``wanted``; return its JSON."""
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/bigdata/api/v1/instances/{instance_id}", headers=headers).get_json()
        if body["status"] in wanted:
            return body
        time.sleep(0.05)
    raise AssertionError(f"instance {instance_id} stayed {body.get('status')}: {body}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, what, timeout: float = 60, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; return it.

    ``what`` is a string, or a callable giving the state to report on a timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise AssertionError(f"timed out waiting for {detail}")
        time.sleep(interval)


def services_or_skip() -> None:
    """Skip (or fail, under PAAS_REQUIRE_SERVICES=1) unless RabbitMQ and PostgreSQL answer."""
    problems = []
    try:
        import psycopg

        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except Exception as exc:  # any failure means unreachable
        problems.append(f"PostgreSQL at {PG_ADMIN_URL}: {exc}")
    try:
        from kombu import Connection

        with Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # any failure means unreachable
        problems.append(f"RabbitMQ at {AMQP_URL}: {exc}")
    if problems:
        message = "; ".join(problems)
        if REQUIRE_SERVICES:
            pytest.fail(f"PAAS_REQUIRE_SERVICES=1 but {message}")
        pytest.skip(f"needs RabbitMQ and PostgreSQL: {message}")


PG_ADMIN_URL = os.environ.get("PAAS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("PAAS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def pg_database():
    """A fresh PostgreSQL database for this test, dropped afterwards; yields its URL."""
    services_or_skip()
    import psycopg

    name = f"paas_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def each_database(request) -> dict[str, str]:
    """Run the test twice, on SQLite and on a fresh PostgreSQL database: what to add to
    ``base_env`` ({} for SQLite, the default)."""
    if request.param == "postgresql":
        return {"PAAS_DATABASE_URL": request.getfixturevalue("pg_database")}
    return {}


@pytest.fixture
def services_env(data_root, pg_database) -> Iterator[dict[str, str]]:
    """A deployment on PostgreSQL and RabbitMQ with queues unique to this test, which are
    deleted (with their exchanges, the hosts' queues too) afterwards."""
    env = base_env(data_root / "var", PAAS_DATABASE_URL=pg_database, PAAS_BROKER_URL=AMQP_URL)
    yield env
    drop_deployment_queues(env, pg_database)


def drop_deployment_queues(env: dict[str, str], database_url: str) -> None:
    """Delete a test deployment's queues (and exchanges) on the shared RabbitMQ: the pipeline's,
    the orquestrator's, and each host's (a host's queue exists once the host was added: its
    agent is asked to report there)."""
    from kombu import Connection

    hosts: list[str] = []
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(database_url.replace("+psycopg", ""), connect_timeout=5) as db:
            hosts = [row[0] for row in db.execute("SELECT name FROM hosts")]
    with Connection(env["PAAS_BROKER_URL"], connect_timeout=5) as conn:
        for name in ("pipeline", "orquestrator", *(f"host.{h}" for h in hosts)):
            # each on a fresh channel: deleting what does not exist closes the channel
            with contextlib.suppress(Exception), conn.channel() as channel:
                channel.queue_delete(env["PAAS_QUEUE_PREFIX"] + name)
                channel.exchange_delete(env["PAAS_QUEUE_PREFIX"] + name)
