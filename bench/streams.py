"""What open event streams cost: database queries when nothing happens, /health beside them,
and how long an event takes to reach them.

Through gunicorn as the Procfile starts it (``-c config/gunicorn.py``: 2 gthread workers of
PAAS_WEB_THREADS threads). For each number of open streams (admins' ``/events/stream``, which
never end), it counts the database's queries over a quiet window, times GET /health, then
commits one event and times its arrival at every stream.

* PostgreSQL: scans of the ``events`` table (``pg_stat_user_tables``: every look of a poller
  reads its newest id, every stream's read of its rows scans it too), around the window.
* SQLite (no server to ask): the statements the web workers run, each logged by a SQLAlchemy
  listener that bench/gunicorn_count.py (the Procfile's settings plus that) installs.

    .venv/bin/python bench/streams.py [--streams 0,50,200] [--window 10] [--db both]
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import AMQP, PG_ADMIN, call, free_port, stop_group  # noqa: E402
from tests.conftest import ADMIN_TOKEN as ADMIN  # noqa: E402

API = "/bigdata/api/v1"
BIN = Path(sys.executable).parent


def start_gunicorn(env: dict, port: int, log: Path, config: str):
    import subprocess

    with log.open("ab") as out:
        web = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", config, "wsgi:app"],
            cwd=ROOT,
            env={**os.environ, **env, "PAAS_PORT": str(port), "PAAS_HOST": "127.0.0.1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while call(port, "GET", "/health", timeout=5).status != 200:
        if web.poll() is not None or time.monotonic() > deadline:
            stop_group(web)
            raise RuntimeError(log.read_text()[-3000:])
        time.sleep(0.2)
    return web


class Streams:
    """N open streams, each on its own socket, read by one selector loop."""

    def __init__(self, port: int, n: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.buffers: dict[socket.socket, bytes] = {}
        for _ in range(n):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(
                f"GET {API}/events/stream HTTP/1.1\r\nHost: b\r\n"
                f"Authorization: Bearer {ADMIN}\r\n\r\n".encode()
            )
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
            self.buffers[sock] = b""
        self.wait_all(b"retry:", 60)

    def wait_all(self, marker: bytes, timeout: float) -> list[float]:
        """Read until every stream holds ``marker``; when each did (monotonic seconds)."""
        arrived: dict[socket.socket, float] = {
            s: time.monotonic() for s, b in self.buffers.items() if marker in b
        }
        deadline = time.monotonic() + timeout
        while len(arrived) < len(self.buffers):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(self.buffers) - len(arrived)} streams never got {marker}")
            for key, _ in self.selector.select(0.5):
                sock = key.fileobj
                self.buffers[sock] += sock.recv(65536)
                if sock not in arrived and marker in self.buffers[sock]:
                    arrived[sock] = time.monotonic()
        return list(arrived.values())

    def close(self) -> None:
        for sock in self.buffers:
            self.selector.unregister(sock)
            sock.close()


def pg_reads(url: str) -> int:
    """Scans of the events table so far (each look of a poller is one)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")  # this backend's own, for later
        return conn.execute(
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables"
            " WHERE relname = 'events'"
        ).fetchone()[0]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(db: str, counts: list[int], window: float) -> list[dict]:
    from bigdata_paas.models import Event
    from tests.api.support import add_service
    from tests.conftest import base_env, make_app

    root = Path(tempfile.mkdtemp(prefix="paas-bench-streams-"))
    env = base_env(root / "var")
    dbname = None
    if db == "postgresql":
        import psycopg

        dbname = f"paas_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        env.update(PAAS_DATABASE_URL=f"{base}/{dbname}", PAAS_BROKER_URL=AMQP)
        pg_url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{dbname}"
    else:
        env["PAAS_BENCH_COUNT_QUERIES"] = str(root / "queries.log")
        (root / "queries.log").touch()
    app = make_app(env)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {ADMIN}"}
    add_service(
        client,
        headers,
        "bench",
        "1",
        template='{"nodes": {"n0": {"cpu": 1, "mem": 64}}, "services": {}}',
        options={"required": {}},
        orquestrator="print('ok')\n",
    )
    instance_id = client.post(f"{API}/services/bench/1", json={}, headers=headers).get_json()["id"]
    port = free_port()
    config = "config/gunicorn.py" if dbname else "bench/gunicorn_count.py"
    web = start_gunicorn(env, port, root / "web.log", config)
    results = []
    try:
        for n in counts:
            streams = Streams(port, n)
            # Settled: every stream open and waiting, and (PostgreSQL) the table counters of
            # what came before flushed (an idle backend flushes within 10 s).
            time.sleep(12 if dbname else 2)
            if dbname:
                before = pg_reads(pg_url)
            else:
                before = len((root / "queries.log").read_text().splitlines())
            started = time.monotonic()
            time.sleep(window)
            elapsed = time.monotonic() - started
            if dbname:
                time.sleep(11)  # the window's counters flushed (the pollers keep looking)
                queries = pg_reads(pg_url) - before
                elapsed = time.monotonic() - started
            else:
                queries = len((root / "queries.log").read_text().splitlines()) - before
            health = []
            for _ in range(50):
                reply = call(port, "GET", "/health", timeout=30)
                assert reply.status == 200, reply
                health.append(reply.latency)
            marker = uuid.uuid4().hex
            with app.extensions["paas"].db.session() as session:
                session.add(
                    Event(instance_id=instance_id, step="bench", status="pending", message=marker)
                )
                session.commit()
            committed = time.monotonic()
            arrivals = [t - committed for t in streams.wait_all(marker.encode(), 60)] if n else []
            streams.close()
            results.append(
                {
                    "db": db,
                    "streams": n,
                    "queries_per_s": queries / elapsed,
                    "health_p50_ms": 1000 * statistics.median(health),
                    "health_max_ms": 1000 * max(health),
                    "event_p50_ms": 1000 * statistics.median(arrivals) if arrivals else None,
                    "event_max_ms": 1000 * max(arrivals) if arrivals else None,
                }
            )
            print(json.dumps(results[-1]), flush=True)
    finally:
        stop_group(web)
        app.extensions["celery"].close()
        app.extensions["paas"].db.dispose()
        if dbname:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        shutil.rmtree(root, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="0,1,50,200")
    parser.add_argument("--window", type=float, default=10.0, help="quiet seconds counted")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    counts = [int(n) for n in args.streams.split(",")]
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    rows = [row for db in dbs for row in measure(db, counts, args.window)]
    print(
        "\n| database | open streams | queries/s (quiet) | /health p50 / max (ms) "
        "| event to all streams p50 / max (ms) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        event = (
            "-"
            if r["event_p50_ms"] is None
            else f"{r['event_p50_ms']:.0f} / {r['event_max_ms']:.0f}"
        )
        print(
            f"| {r['db']} | {r['streams']} | {r['queries_per_s']:.2f} | "
            f"{r['health_p50_ms']:.1f} / {r['health_max_ms']:.1f} | {event} |"
        )


if __name__ == "__main__":
    main()
