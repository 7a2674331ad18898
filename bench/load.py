"""500 concurrent launches through gunicorn against capacity for 100, next to a no-op baseline.

On PostgreSQL + RabbitMQ (PAAS_TEST_PG_URL, PAAS_TEST_AMQP_URL, or their local defaults) it
starts gunicorn as the Procfile does, with gthread workers (``-w 2 -k gthread --threads 16``),
and two Celery workers on both queues; registers a 1-node service whose orquestrator exits 0
and hosts that hold exactly ``--capacity`` such nodes; then fires ``--n`` launch POSTs from as
many threads released together by a barrier. In the same run, before the launches, the same
number of threads send GET /health (web + database + broker answer) and an authenticated GET
of the service (a no-op read): the baselines. It then waits for the pipeline to settle
(capacity running, the rest queued), and destroys the running instances wave after wave until
the queue is empty, timing each phase.

    .venv/bin/python bench/load.py [--n 500] [--capacity 100] [--threads 16]

tests/load/test_concurrent_launches.py runs the same scenario with every check, and imports
the HTTP helpers of this file.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BIN = Path(sys.executable).parent
API = "/bigdata/api/v1"
ADMIN = "bench-admin-token-0123456789abcdef"
PG_ADMIN = os.environ.get("PAAS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP = os.environ.get("PAAS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

NAME, VERSION = "load", "1.0"
NETWORK = "loadnet"
#: one node of 1 cpu, 256 MB, one disk and one address: hosts of NODES_PER_HOST cpu,
#: NODES_PER_HOST * 256 MB and NODES_PER_HOST disks run out of every dimension at once
TEMPLATE = (
    '{"nodes": {"n0": {"cpu": 1, "mem": 256,'
    ' "disks": {"d0": {"type": "hdd", "destination": "/data/0"}},'
    ' "networks": {"eth0": {"networkname": "' + NETWORK + '", "type": "dynamic"}}}},'
    ' "services": {"load": {"nodes": ["n0"]}}}'
)
OPTIONS = {
    "required": {"label": "load"},
    "descriptions": {"label": "a free-form label (unused)"},
}
ORQUESTRATOR = "#!/bin/sh\nexit 0\n"
NODE_MEM = 256
NODES_PER_HOST = 10


# -- HTTP against the live web process ----------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: dict
    began: float
    ended: float
    error: str = ""

    @property
    def latency(self) -> float:
        return self.ended - self.began


def call(
    port: int,
    method: str,
    path: str,
    body: dict | None = None,
    token: str | None = None,
    timeout: float = 120,
) -> Reply:
    """One request on its own connection; a connection error is a Reply with status 0."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    payload = json.dumps(body).encode() if body is not None else None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    began = time.perf_counter()
    try:
        conn.request(method, API + path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        ended = time.perf_counter()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {"raw": raw[:500].decode(errors="replace")}
        return Reply(response.status, parsed, began, ended)
    except OSError as exc:
        return Reply(0, {}, began, time.perf_counter(), f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


@dataclass
class Burst:
    """The replies of one burst, in thread order, and when the barrier released the threads."""

    replies: list[Reply]
    released: float
    codes: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.codes = Counter(r.status for r in self.replies)

    def figures(self, ok: int) -> dict[str, float]:
        """Replies with status ``ok`` per second (release -> last such reply), and the
        latency percentiles (ms) of every request."""
        good = [r for r in self.replies if r.status == ok]
        span = max((r.ended for r in good), default=self.released) - self.released
        latencies = [r.latency for r in self.replies]
        return {
            "ok": len(good),
            "per_s": len(good) / span if span > 0 else 0.0,
            "p50_ms": 1000 * percentile(latencies, 50),
            "p95_ms": 1000 * percentile(latencies, 95),
            "p99_ms": 1000 * percentile(latencies, 99),
            "max_ms": 1000 * max(latencies),
        }


def burst(n: int, send: Callable[[int], Reply], timeout: float = 300) -> Burst:
    """Run ``send(i)`` on ``n`` threads released together by a barrier."""
    replies: list[Reply | None] = [None] * n
    released: list[float] = []
    barrier = threading.Barrier(n + 1, action=lambda: released.append(time.perf_counter()))

    def work(i: int) -> None:
        barrier.wait(timeout=60)
        replies[i] = send(i)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=60)
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    missing = [i for i, r in enumerate(replies) if r is None]
    if missing:
        raise RuntimeError(f"{len(missing)} of {n} requests did not finish in {timeout} s")
    return Burst(replies, released[0])  # type: ignore[arg-type]


def in_pool(items: list, send: Callable[[object], Reply], threads: int = 16) -> list[Reply]:
    """Send one request per item on a pool of ``threads`` threads; replies in item order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(send, items))


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-100) of ``values``."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_web(env: dict, port: int, log: Path, workers: int = 2, threads: int = 16):
    """gunicorn as the Procfile starts it, with gthread workers; returns once /health is 200."""
    with log.open("ab") as out:
        web = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(threads),
                "--graceful-timeout",
                "10",
                "wsgi:app",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while call(port, "GET", "/health", token=None, timeout=5).status != 200:
        if web.poll() is not None or time.monotonic() > deadline:
            stop_group(web)
            raise RuntimeError(f"gunicorn did not answer /health: {log.read_text()[-3000:]}")
        time.sleep(0.2)
    return web


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def start_worker(env: dict, log: Path, concurrency: int = 2) -> subprocess.Popen:
    """A Celery worker on both queues, as the Procfile's two worker lines together."""
    prefix = env["PAAS_QUEUE_PREFIX"]
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "worker",
        "-Q",
        f"{prefix}pipeline,{prefix}orquestrator",
        "-n",
        f"load-{uuid.uuid4().hex[:6]}@%h",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
    ]
    with log.open("ab") as out:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while b" ready." not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_group(process)
            raise RuntimeError(f"worker did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return process


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its descendants, the reaped ones included (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
    return total


def database_cpu(dbname: str) -> float:
    """CPU seconds of the PostgreSQL backends serving ``dbname`` now (a local server)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and dbname in (proc / "cmdline").read_text():
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(x) for x in fields[11:13]) / tick
    return total


# -- the service, the inventory, the database ----------------------------------------------------


def register(client, capacity: int, token: str = ADMIN) -> None:
    """The ``load`` service and hosts holding exactly ``capacity`` of its nodes, via the API."""
    auth = {"Authorization": f"Bearer {token}"}
    for method, path, kwargs, wanted in (
        ("post", "/services", {"json": {"name": NAME, "version": VERSION}}, 201),
        ("put", f"/services/{NAME}/{VERSION}/template", {"data": TEMPLATE}, 200),
        ("put", f"/services/{NAME}/{VERSION}/options", {"json": OPTIONS}, 200),
        ("put", f"/services/{NAME}/{VERSION}/orquestrator", {"data": ORQUESTRATOR}, 200),
        (
            "post",
            "/networks",
            {"json": {"name": NETWORK, "cidr": "10.88.0.0/23", "gateway": "10.88.0.1"}},
            201,
        ),
    ):
        response = getattr(client, method)(
            API + path, headers=auth, content_type="application/json", **kwargs
        )
        assert response.status_code == wanted, (path, response.get_json())
    hosts, rest = divmod(capacity, NODES_PER_HOST)
    assert rest == 0, f"capacity must be a multiple of {NODES_PER_HOST}"
    for i in range(hosts):
        host = {
            "name": f"h{i:03d}",
            "address": f"192.0.2.{i + 1}",
            "cpu": NODES_PER_HOST,
            "mem": NODES_PER_HOST * NODE_MEM,
            "disks": [{"name": f"sd{d}", "type": "hdd"} for d in range(NODES_PER_HOST)],
            "networks": [NETWORK],
        }
        response = client.post(f"{API}/hosts", json=host, headers=auth)
        assert response.status_code == 201, response.get_json()


def status_counts(engine, ids=None) -> Counter:
    """Instances per status (of ``ids`` when given), straight from the database."""
    from sqlalchemy import text

    with engine.connect() as conn:
        found = conn.execute(text("SELECT id, status FROM instances")).all()
        conn.rollback()
    wanted = None if ids is None else set(ids)
    return Counter(s for i, s in found if wanted is None or i in wanted)


def wait_for(predicate, what: Callable[[], str] | str, timeout: float, interval: float = 0.25):
    """Poll ``predicate`` until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(
        f"timed out after {timeout} s waiting for {what() if callable(what) else what}"
    )


def running_ids(engine) -> list[str]:
    from sqlalchemy import text

    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT id FROM instances WHERE status = 'running' ORDER BY queued_at, id")
        ).all()
        conn.rollback()
    return [i for (i,) in found]


# -- the bench -----------------------------------------------------------------------------------


def bench(env: dict, n: int, capacity: int, threads: int, tmp: Path) -> dict:
    from bigdata_paas import create_app
    from bigdata_paas.cli import migrate
    from bigdata_paas.operations.users import ensure_admin
    from config import Config

    config = Config.from_env(env)
    migrate(config.database_url)
    app = create_app(config)
    rt = app.extensions["paas"]
    ensure_admin(rt, ADMIN)
    register(app.test_client(), capacity)
    engine = rt.db.engine
    port = free_port()
    processes = [start_web(env, port, tmp / "web.log", threads=threads)]
    try:
        processes += [start_worker(env, tmp / f"worker{i}.log") for i in range(2)]
        results: dict = {"load_before": os.getloadavg()[0]}
        results["health"] = burst(n, lambda _i: call(port, "GET", "/health", token=None))
        results["read"] = burst(
            n, lambda _i: call(port, "GET", f"/services/{NAME}/{VERSION}", token=ADMIN)
        )
        results["launch"] = burst(
            n, lambda _i: call(port, "POST", f"/services/{NAME}/{VERSION}", {}, ADMIN)
        )
        ids = [r.body.get("id") for r in results["launch"].replies if r.status == 202]
        began = time.monotonic()

        fit = min(capacity, len(ids))

        def settled():
            counts = status_counts(engine, ids)
            return counts if counts == Counter(running=fit, queued=len(ids) - fit) else None

        counts = wait_for(settled, lambda: str(status_counts(engine, ids)), timeout=900)
        results["settle_s"] = time.monotonic() - began
        results["settled"] = dict(counts)
        waves = []
        while running := running_ids(engine):
            queued = status_counts(engine, ids)["queued"]
            began = time.monotonic()
            in_pool(running, lambda i: call(port, "DELETE", f"/instances/{i}", token=ADMIN))
            wanted = {"running": min(capacity, queued), "queued": queued - min(capacity, queued)}

            def next_wave(wanted=wanted):
                counts = status_counts(engine, ids)
                moving = set(counts) - {"running", "queued", "failed", "destroyed"}
                done = all(counts[k] == v for k, v in wanted.items())
                return not moving and done and counts

            wait_for(next_wave, lambda: str(status_counts(engine, ids)), timeout=900)
            waves.append(time.monotonic() - began)
        results["waves_s"] = waves
        results["final"] = dict(status_counts(engine, ids))
        dbname = config.database_url.rsplit("/", 1)[1]
        results["cpu_s"] = {
            "web": tree_cpu(processes[0].pid),
            "workers": sum(tree_cpu(p.pid) for p in processes[1:]),
            "database": database_cpu(dbname),
        }
        return results
    finally:
        for process in reversed(processes):
            stop_group(process)
        app.extensions["celery"].close()
        rt.db.dispose()


def services_reachable() -> str | None:
    try:
        import psycopg
        from kombu import Connection

        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
        with Connection(AMQP, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # any failure means we cannot bench on them
        return str(exc)
    return None


def cleanup_queues(prefix: str, hosts: int = 0) -> None:
    """Delete the run's queues: the platform's and each host's (adding a host asks its agent
    to report on the host's durable queue)."""
    from kombu import Connection

    with Connection(AMQP, connect_timeout=5) as conn:
        for name in ("pipeline", "orquestrator", *(f"host.h{i:03d}" for i in range(hosts))):
            with contextlib.suppress(Exception), conn.channel() as channel:
                channel.queue_delete(prefix + name)
                channel.exchange_delete(prefix + name)


@contextlib.contextmanager
def keep_or_temp(keep: bool):
    """A temp folder for the logs; kept (and printed) with ``--keep``."""
    if keep:
        path = tempfile.mkdtemp(prefix="paas-bench-load-")
        print(f"keeping {path}")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="paas-bench-load-") as path:
        yield path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="concurrent launches (and threads)")
    parser.add_argument("--capacity", type=int, default=100, help="instances the hosts hold")
    parser.add_argument("--threads", type=int, default=16, help="gthread threads per gunicorn")
    parser.add_argument("--keep", action="store_true", help="keep (and print) the logs folder")
    args = parser.parse_args()
    problem = services_reachable()
    if problem:
        sys.exit(f"needs RabbitMQ and PostgreSQL: {problem}")
    import psycopg

    dbname = f"paas_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    with keep_or_temp(args.keep) as tmpdir:
        tmp = Path(tmpdir)
        os.chmod(tmp, 0o711)
        env = {
            "PAAS_DATA_DIR": str(tmp / "var"),
            "PAAS_ADMIN_TOKEN": ADMIN,
            "PAAS_QUEUE_PREFIX": f"bench{uuid.uuid4().hex[:8]}.",
            "PAAS_LOG_LEVEL": "WARNING",
            "PAAS_BROKER_URL": AMQP,
            "PAAS_DATABASE_URL": f"{base}/{dbname}",
        }
        try:
            results = bench(env, args.n, args.capacity, args.threads, tmp)
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            cleanup_queues(env["PAAS_QUEUE_PREFIX"], hosts=args.capacity // NODES_PER_HOST)
    print(
        f"\nload benchmark: {args.n} threads released together against gunicorn"
        f" (2 gthread workers x {args.threads} threads), PostgreSQL + RabbitMQ,"
        f" 2 Celery workers; capacity {args.capacity} one-node instances\n"
    )
    print("| request | answered ok | ok/s | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |")
    print("|---|---|---|---|---|---|---|")
    for key, label, ok in (
        ("health", "GET /health (baseline: web + database + broker)", 200),
        ("read", f"GET /services/{NAME}/{VERSION} (baseline: authenticated read)", 200),
        ("launch", f"POST /services/{NAME}/{VERSION} (launch)", 202),
    ):
        f = results[key].figures(ok)
        print(
            f"| {label} | {f['ok']}/{args.n} | {f['per_s']:.1f} | {f['p50_ms']:.0f} | "
            f"{f['p95_ms']:.0f} | {f['p99_ms']:.0f} | {f['max_ms']:.0f} |"
        )
    launch, read = results["launch"].figures(202), results["read"].figures(200)
    print(
        f"\nlaunch codes {dict(results['launch'].codes)}; p50 launch/read = "
        f"{launch['p50_ms'] / read['p50_ms']:.1f}x"
    )
    print(f"settled in {results['settle_s']:.1f} s after the last launch: {results['settled']}")
    cpu = results["cpu_s"]
    print(
        f"CPU seconds: web {cpu['web']:.1f}, workers {cpu['workers']:.1f} (orquestrators"
        f" included), PostgreSQL backends {cpu['database']:.1f}; load average before the"
        f" run {results['load_before']:.1f} (other work on the machine)"
    )
    print(
        "queue drained in waves of destroys: "
        + ", ".join(f"{s:.1f} s" for s in results["waves_s"])
        + f"; final {results['final']}"
    )
    print(
        json.dumps(
            {
                "health": results["health"].figures(200),
                "read": read,
                "launch": launch,
                "settle_s": results["settle_s"],
                "waves_s": results["waves_s"],
                "cpu_s": cpu,
            }
        )
    )


if __name__ == "__main__":
    main()
