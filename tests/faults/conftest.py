"""Fixtures of the fault tests: a tiny service with a disk and an address per node, an audit
of every allocation, PostgreSQL row locks that hold a step mid-transaction, and a private
RabbitMQ node that a test may stop and start (never the shared one)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bigdata_paas import states
from bigdata_paas.models import Address, Host, HostDisk, Instance, Node
from tests.conftest import REQUIRE_SERVICES, ROOT, bearer, free_port, make_app, wait_until

API = "/bigdata/api/v1"
SERVICE = ("faulty", "1")
NETWORK = "faults"

#: one node holding cpu, memory, a disk and an address: every kind of allocation
TEMPLATE = """{"nodes": {"n0": {"cpu": 1, "mem": 64,
  "disks": {"d0": {"destination": "/data/0"}},
  "networks": {"eth0": {"networkname": "faults", "type": "dynamic"}}
  {%- if opts['check_port'] %}, "check_ports": [{{ opts['check_port'] }}]{% endif %}}},
 "services": {"svc": {"nodes": ["n0"]}}}"""
OPTIONS = {
    "required": {},
    "optional": {"hang": False, "check_port": 0},
    "descriptions": {"hang": "see ORQUESTRATOR", "check_port": "a port the health check waits for"},
}

#: with ``hang``, the instance's first start blocks until its worker dies (then exits 3);
#: every other command, and every later start, succeeds at once
ORQUESTRATOR = """import json, os, sys, time
options = json.load(open(os.environ["PAAS_INSTANCE_FILE"]))["options"]
if sys.argv[1] == "start" and options["hang"] and not os.path.exists("first-start"):
    open("first-start", "w").close()
    print("first start: waiting for the worker to be killed", flush=True)
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.1)
    sys.exit(3)
print(sys.argv[1], "done")
"""


class Deployment:
    """The app of one test on its database and broker, with the fault service registered."""

    def __init__(self, env: dict[str, str], hosts: int = 1) -> None:
        self.env = env
        self.app = make_app(env)
        self.rt = self.app.extensions["paas"]
        self.client = self.app.test_client()
        self.admin = bearer(env["PAAS_ADMIN_TOKEN"])
        self.register()
        self.add_hosts(hosts)

    def call(self, method: str, path: str, **kwargs):
        return self.client.open(f"{API}{path}", method=method, headers=self.admin, **kwargs)

    def register(self) -> None:
        name, version = SERVICE
        assert self.call("POST", "/services", json={"name": name, "version": version}).status_code
        for part, body in (
            ("template", TEMPLATE),
            ("options", json.dumps(OPTIONS)),
            ("orquestrator", ORQUESTRATOR),
        ):
            response = self.call("PUT", f"/services/{name}/{version}/{part}", data=body)
            assert response.status_code == 200, response.get_json()

    def add_hosts(self, count: int) -> None:
        """``count`` hosts of 64 cpu and 64 disks each, on a /20 pool of loopback addresses (a
        check port on them is refused at once: no route to another machine to wait for)."""
        prefix = f"127.{random.randint(22, 250)}.{16 * random.randint(0, 15)}"
        network = {"name": NETWORK, "cidr": f"{prefix}.0/20", "gateway": f"{prefix}.1"}
        assert self.call("POST", "/networks", json=network).status_code == 201
        for i in range(count):
            host = {
                "name": f"h{i}",
                "address": "127.0.0.1",
                "cpu": 64,
                "mem": 64 * 1024,
                "disks": [{"name": f"sd{d}", "type": "hdd", "size": 100} for d in range(64)],
                "networks": [NETWORK],
            }
            response = self.call("POST", "/hosts", json=host)
            assert response.status_code == 201, response.get_json()

    def launch(self, **options):
        """POST a launch of the fault service; the response."""
        name, version = SERVICE
        return self.call("POST", f"/services/{name}/{version}", json=options)

    def instance(self, instance_id: str) -> dict:
        return self.call("GET", f"/instances/{instance_id}").get_json()

    def events(self, instance_id: str) -> list[dict]:
        return self.call("GET", f"/instances/{instance_id}/events").get_json()["events"]

    def statuses(self) -> Counter:
        """How many instances are in each status, from the database."""
        with self.rt.db.session() as session:
            return Counter(session.scalars(select(Instance.status)))

    def close(self) -> None:
        self.app.extensions["celery"].close()
        self.rt.db.dispose()


def audit_allocations(rt) -> dict:
    """Compare what the inventory says is allocated with what live instances' nodes hold.

    Returns the mismatches (empty when every cpu, MB, disk and address in use belongs to a
    placed node of a live instance, once, and every placed node holds all it was given).
    """
    live = (*states.IN_FLIGHT, states.RUNNING, states.DESTROYING)
    with rt.db.session() as session:
        nodes = session.execute(
            select(Node.id, Node.host_id, Node.cpu, Node.mem, Node.spec, Instance.status).join(
                Instance, Instance.id == Node.instance_id
            )
        ).all()
        hosts = session.execute(select(Host.id, Host.cpu_used, Host.mem_used)).all()
        disks = session.execute(
            select(HostDisk.node_id, HostDisk.host_id).where(HostDisk.node_id.is_not(None))
        ).all()
        addresses = session.execute(select(Address.node_id, Address.device)).all()
        session.rollback()
    placed = {n.id: n for n in nodes if n.host_id is not None}
    problems: dict[str, object] = {}
    dead = [n.id for n in placed.values() if n.status not in live]
    if dead:
        problems["placed nodes of dead instances"] = dead
    for host_id, cpu_used, mem_used in hosts:
        on_host = [n for n in placed.values() if n.host_id == host_id]
        expected = (sum(n.cpu for n in on_host), sum(n.mem for n in on_host))
        if (cpu_used, mem_used) != expected:
            problems[f"host {host_id} cpu/mem used"] = ((cpu_used, mem_used), expected)
    held_disks = Counter(node_id for node_id, _host in disks)
    held_addresses = Counter(node_id for node_id, _device in addresses)
    for node in placed.values():
        want_disks, want_nics = len(node.spec.get("disks", {})), len(node.spec.get("networks", {}))
        if held_disks.pop(node.id, 0) != want_disks or held_addresses.pop(node.id, 0) != want_nics:
            problems[f"node {node.id}"] = "does not hold exactly its disks and addresses"
    if held_disks:
        problems["disks held by unplaced nodes"] = dict(held_disks)
    if held_addresses:
        problems["addresses held by unplaced nodes"] = dict(held_addresses)
    return problems


def allocated_total(rt) -> tuple[int, int, int]:
    """(cpu in use, disks in use, addresses in use) over the whole inventory."""
    with rt.db.session() as session:
        cpu = sum(session.scalars(select(Host.cpu_used)))
        disks = len(session.scalars(select(HostDisk.id).where(HostDisk.node_id.is_not(None))).all())
        addresses = len(session.scalars(select(Address.id)).all())
        session.rollback()
    return cpu, disks, addresses


def purge_queue(env: dict[str, str], name: str) -> int:
    """Drop every ready message of the deployment's queue ``name``; how many were dropped
    (none when nothing was published to it yet, so the queue does not exist)."""
    from amqp.exceptions import NotFound
    from kombu import Connection

    with (
        Connection(env["PAAS_BROKER_URL"], connect_timeout=5) as conn,
        conn.channel() as channel,
    ):
        try:
            return channel.queue_purge(env.get("PAAS_QUEUE_PREFIX", "") + name) or 0
        except NotFound:
            return 0


def psycopg_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")


@contextlib.contextmanager
def row_lock(database_url: str, instance_id: str) -> Iterator[None]:
    """Hold the instance's row lock (FOR UPDATE) from a connection of the test's own.

    A step's compare-and-set waits on it mid-transaction, where a SIGKILL of its worker lands
    exactly in that step; leaving the block rolls back and frees the row.
    """
    import psycopg

    with psycopg.connect(psycopg_url(database_url)) as conn:
        locked = conn.execute(
            "SELECT id FROM instances WHERE id = %s FOR UPDATE", (instance_id,)
        ).fetchone()
        assert locked is not None, instance_id
        yield
        conn.rollback()


def waiting_statements(database_url: str) -> list[str]:
    """Statements of other sessions of the database that wait on a lock."""
    import psycopg

    with psycopg.connect(psycopg_url(database_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        ).fetchall()
    return [query for (query,) in rows]


class Process:
    """A platform process of the test (gunicorn, celery beat) in its own process group."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, ready) -> None:
        self.args, self.env = args, {**os.environ, **env}
        self.log_path, self.ready = log_path, ready
        self.process: subprocess.Popen | None = None

    def start(self) -> Process:
        """Start it and wait until ``ready(self)`` says it serves."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(lambda: self.exited() or self.ready(self), f"{self.args[2]} to start")
        assert not self.exited(), self.output()[-3000:]
        return self

    def exited(self) -> bool:
        return self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or an OOM killer would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def gunicorn(env: dict[str, str], port: int, log_path: Path) -> Process:
    """The Procfile's web process on ``port``."""
    args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    return Process([*args, "wsgi:app"], env, log_path, ready=lambda _p: answers(port))


def answers(port: int) -> bool:
    import requests

    try:
        requests.get(f"http://127.0.0.1:{port}{API}/health", timeout=2)
    except requests.RequestException:
        return False
    return True


def beat(env: dict[str, str], log_path: Path) -> Process:
    """The Procfile's beat process, which publishes pipeline.sweep every SWEEP_INTERVAL."""
    args = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat", "-l", "INFO"]
    return Process(args, env, log_path, ready=lambda p: "beat: Starting..." in p.output())


class RabbitNode:
    """A RabbitMQ node of the test's own: its name, ports and files in a temp dir.

    ``stop`` and ``start`` keep the mnesia dir, so durable queues and their persistent
    messages survive as they would on a production broker's restart.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"paas-{uuid.uuid4().hex[:10]}@localhost"
        self.port, dist = free_port(), free_port()
        (root / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (root / "enabled_plugins").write_text("[].\n")
        (root / "rabbitmq-env.conf").write_text("")
        shutil.chown(root, "rabbitmq", "rabbitmq")
        for item in root.iterdir():
            shutil.chown(item, "rabbitmq", "rabbitmq")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_PID_FILE": str(root / "node.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
        }
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.starts = 0
        self.server: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the node and wait until it accepts AMQP connections."""
        self.starts += 1
        with (self.root / f"server-{self.starts}.log").open("wb") as log:
            self.server = subprocess.Popen(
                ["rabbitmq-server"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self.accepts_amqp, f"RabbitMQ node {self.name} to start", timeout=90)

    def accepts_amqp(self) -> bool:
        from kombu import Connection

        try:
            with Connection(self.url, connect_timeout=1) as conn:
                conn.ensure_connection(max_retries=0)
        except Exception:  # any failure means not up yet
            return False
        return True

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """rabbitmqctl, always against this node (``-n``), never the default one."""
        return subprocess.run(
            ["rabbitmqctl", "-n", self.name, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self) -> None:
        """Stop the node (its queues stay on disk) and wait until its port is closed."""
        result = self.ctl("stop")
        assert result.returncode == 0, result.stdout + result.stderr
        self.server.wait(timeout=60)

    def block_publishers(self, blocked: bool) -> None:
        """Raise (or clear) a memory alarm: RabbitMQ stops reading from publishers."""
        result = self.ctl("set_vm_memory_high_watermark", "0" if blocked else "0.4")
        assert result.returncode == 0, result.stdout + result.stderr

    def halt(self) -> None:
        """Stop the node for good, by its pid file if rabbitmqctl cannot."""
        if self.ctl("stop", timeout=30).returncode != 0:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int((self.root / "node.pid").read_text().strip()), signal.SIGKILL)
        if self.server is not None:
            self.server.wait(timeout=60)


@pytest.fixture
def rabbit_node() -> Iterator[RabbitNode]:
    """A private RabbitMQ node, started; stopped and removed after the test."""
    if shutil.which("rabbitmq-server") is None or os.geteuid() != 0:
        if REQUIRE_SERVICES:
            pytest.fail("PAAS_REQUIRE_SERVICES=1 but no rabbitmq-server to run as root")
        pytest.skip("needs rabbitmq-server, run as root, for a private RabbitMQ node")
    root = Path(tempfile.mkdtemp(prefix="paas-rabbit-"))
    node = RabbitNode(root)
    try:
        node.start()
        yield node
    finally:
        node.halt()
        shutil.rmtree(root, ignore_errors=True)


PG_BIN = Path("/usr/lib/postgresql")


def pg_tool(name: str) -> str | None:
    """The newest installed PostgreSQL's ``name`` (initdb, pg_ctl), or None."""
    found = sorted(PG_BIN.glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    return str(found[-1]) if found else None


class PostgresCluster:
    """A PostgreSQL cluster of the test's own: initdb in a temp dir, its own port and socket
    dir, listening on 127.0.0.1 only, trust auth; never the shared server.

    ``stop`` and ``start`` keep the data dir, as an operator's restart would (fast mode:
    open connections are terminated, transactions in flight rolled back).
    """

    def __init__(self, root: Path) -> None:
        self.root, self.data = root, root / "data"
        self.port = free_port()
        shutil.chown(root, "postgres", "postgres")
        self.as_postgres(
            pg_tool("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.options = f"-p {self.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/paas"

    def as_postgres(self, *args: str) -> None:
        result = subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def pg_ctl(self, *args: str) -> None:
        log = str(self.root / "server.log")
        self.as_postgres(pg_tool("pg_ctl"), "-D", str(self.data), "-l", log, "-w", *args)

    def start(self) -> None:
        """Start the server; return once it accepts connections."""
        self.pg_ctl("-o", self.options, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; return once it is down."""
        self.pg_ctl("-m", mode, "stop")

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE paas")

    def log(self) -> str:
        return (self.root / "server.log").read_text(errors="replace")


@pytest.fixture
def pg_cluster() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster, started, with an empty database ``paas``; stopped and
    removed after the test."""
    if pg_tool("initdb") is None or os.geteuid() != 0:
        if REQUIRE_SERVICES:
            pytest.fail("PAAS_REQUIRE_SERVICES=1 but no initdb to run as root")
        pytest.skip("needs PostgreSQL's initdb and pg_ctl, run as root, for a private cluster")
    root = Path(tempfile.mkdtemp(prefix="paas-pg-"))
    cluster = PostgresCluster(root)
    try:
        cluster.start()
        cluster.create_database()
        yield cluster
    finally:
        with contextlib.suppress(AssertionError):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
