"""Launches accepted (202) per second through gunicorn, next to an authenticated GET of the service.

On PostgreSQL + RabbitMQ (PAAS_TEST_PG_URL, PAAS_TEST_AMQP_URL, or their local defaults) it
starts gunicorn as the Procfile does (``gunicorn -c config/gunicorn.py wsgi:app``) on a fresh
database and a unique queue prefix, with no Celery worker: a launch only has to be accepted
(validated, dry-rendered in the sandbox, checked against the quota, committed, its chain
published). It registers a 3-node service whose options have defaults, and hosts; then
``--clients`` client threads, each on its own keep-alive connection, send requests for
``--seconds`` per phase: an authenticated GET of the service (the baseline) and a POST launch
of it, alternating for ``--rounds`` rounds so a busy machine slows both alike. It prints
requests/s, the launch/GET ratio, p50/p95 latency and the load average of each phase, as a
markdown table; then deletes the queues and drops the database.

    .venv/bin/python bench/accept.py [--clients 64] [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import (  # noqa: E402
    ADMIN,
    AMQP,
    API,
    BIN,
    PG_ADMIN,
    call,
    cleanup_queues,
    free_port,
    keep_or_temp,
    percentile,
    services_reachable,
    stop_group,
)

NAME, VERSION = "accept", "1.0"
NETWORK = "acceptnet"
#: three nodes whose size comes from options with defaults
TEMPLATE = """{
  "nodes": {
  {% for i in range(nodes) %}
    "n{{ i }}": {"cpu": {{ cpu }}, "mem": {{ mem }},
      "disks": {"d0": {"type": "hdd", "destination": "/data/0"}},
      "networks": {"eth0": {"networkname": "%s", "type": "dynamic"}}}{{ "," if not loop.last }}
  {% endfor %}
  },
  "services": {"accept": {"nodes": [
    {% for i in range(nodes) %}"n{{ i }}"{{ "," if not loop.last }}{% endfor %}]}}
}""".replace("%s", NETWORK)
OPTIONS = {
    "required": {"label": "accept"},
    "optional": {"nodes": 3, "cpu": 1, "mem": 256},
    "descriptions": {
        "label": "a free-form label (unused)",
        "nodes": "how many nodes",
        "cpu": "cores per node",
        "mem": "MB per node",
    },
}
ORQUESTRATOR = "#!/bin/sh\nexit 0\n"
HOSTS = 4


def register(client, token: str = ADMIN) -> None:
    """The ``accept`` service and a few hosts, via the API (in this process)."""
    auth = {"Authorization": f"Bearer {token}"}
    for method, path, kwargs, wanted in (
        ("post", "/services", {"json": {"name": NAME, "version": VERSION}}, 201),
        ("put", f"/services/{NAME}/{VERSION}/template", {"data": TEMPLATE}, 200),
        ("put", f"/services/{NAME}/{VERSION}/options", {"json": OPTIONS}, 200),
        ("put", f"/services/{NAME}/{VERSION}/orquestrator", {"data": ORQUESTRATOR}, 200),
        (
            "post",
            "/networks",
            {"json": {"name": NETWORK, "cidr": "10.89.0.0/23", "gateway": "10.89.0.1"}},
            201,
        ),
    ):
        response = getattr(client, method)(
            API + path, headers=auth, content_type="application/json", **kwargs
        )
        assert response.status_code == wanted, (path, response.get_json())
    for i in range(HOSTS):
        host = {
            "name": f"h{i:03d}",
            "address": f"192.0.2.{i + 1}",
            "cpu": 64,
            "mem": 65536,
            "disks": [{"name": f"sd{d}", "type": "hdd"} for d in range(8)],
            "networks": [NETWORK],
        }
        response = client.post(f"{API}/hosts", json=host, headers=auth)
        assert response.status_code == 201, response.get_json()


def start_web(env: dict, port: int, log: Path) -> subprocess.Popen:
    """gunicorn exactly as the Procfile starts it (config/gunicorn.py); once /health is 200."""
    with log.open("ab") as out:
        web = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "wsgi:app"],
            cwd=ROOT,
            env={**os.environ, **env, "PAAS_PORT": str(port), "PAAS_HOST": "127.0.0.1"},
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


def phase(port: int, clients: int, seconds: float, method: str, ok: int) -> dict:
    """``clients`` threads, each on one keep-alive connection, send ``method`` for ``seconds``."""
    path = f"{API}/services/{NAME}/{VERSION}"
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    body = json.dumps({"label": "bench"}).encode() if method == "POST" else None
    latencies: list[list[float]] = [[] for _ in range(clients)]
    good = [0] * clients
    codes: list[dict[int, int]] = [{} for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    stop = [0.0]

    def work(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        barrier.wait(timeout=60)
        while time.perf_counter() < stop[0]:
            began = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                status = 0
            ended = time.perf_counter()
            if ended > stop[0]:
                break  # finished after the phase: neither counted nor timed
            latencies[i].append(ended - began)
            codes[i][status] = codes[i].get(status, 0) + 1
            good[i] += status == ok
        conn.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop[0] = time.perf_counter() + 3600
    barrier.wait(timeout=60)
    began = time.perf_counter()
    stop[0] = began + seconds
    for thread in threads:
        thread.join(seconds + 180)
    everything = [x for per in latencies for x in per]
    merged: dict[int, int] = {}
    for per in codes:
        for code, count in per.items():
            merged[code] = merged.get(code, 0) + count
    return {
        "ok": sum(good),
        "per_s": sum(good) / seconds,
        "p50_ms": 1000 * percentile(everything, 50) if everything else 0.0,
        "p95_ms": 1000 * percentile(everything, 95) if everything else 0.0,
        "codes": merged,
        "load": os.getloadavg(),
    }


def bench(env: dict, clients: int, seconds: float, rounds: int, tmp: Path) -> list[dict]:
    from bigdata_paas import create_app
    from bigdata_paas.cli import migrate
    from bigdata_paas.operations.users import ensure_admin
    from config import Config

    config = Config.from_env(env)
    migrate(config.database_url)
    app = create_app(config)
    rt = app.extensions["paas"]
    ensure_admin(rt, ADMIN)
    register(app.test_client())
    port = free_port()
    web = start_web(env, port, tmp / "web.log")
    rows = []
    try:
        # warm up: every worker thread's connections, the code cache, the broker channel
        phase(port, clients, 2.0, "GET", 200)
        phase(port, clients, 2.0, "POST", 202)
        for r in range(rounds):
            for label, method, ok in (("GET", "GET", 200), ("POST", "POST", 202)):
                figures = phase(port, clients, seconds, method, ok)
                rows.append({"round": r + 1, "request": label, **figures})
                print(
                    f"round {r + 1} {label}: {figures['per_s']:.1f}/s codes {figures['codes']}"
                    f" load {figures['load'][0]:.2f}",
                    file=sys.stderr,
                )
    finally:
        stop_group(web)
        app.extensions["celery"].close()
        rt.db.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64, help="concurrent client threads")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="GET then POST phases, repeated")
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
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    load_before = os.getloadavg()
    with keep_or_temp(args.keep) as tmpdir:
        tmp = Path(tmpdir)
        os.chmod(tmp, 0o711)
        env = {
            "PAAS_DATA_DIR": str(tmp / "var"),
            "PAAS_ADMIN_TOKEN": ADMIN,
            "PAAS_QUEUE_PREFIX": prefix,
            "PAAS_LOG_LEVEL": "WARNING",
            "PAAS_BROKER_URL": AMQP,
            "PAAS_DATABASE_URL": f"{base}/{dbname}",
        }
        try:
            rows = bench(env, args.clients, args.seconds, args.rounds, tmp)
        finally:
            with (
                contextlib.suppress(Exception),
                psycopg.connect(PG_ADMIN, autocommit=True) as conn,
            ):
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            cleanup_queues(prefix, hosts=HOSTS)
    from config import Config

    config = Config.from_env({})
    print(
        f"\naccept benchmark: {args.clients} keep-alive clients against gunicorn -c"
        f" config/gunicorn.py ({config.WEB_WORKERS} gthread workers x {config.WEB_THREADS}"
        f" threads), PostgreSQL + RabbitMQ, no Celery worker; {args.seconds:g} s phases;"
        f" load average before {load_before[0]:.2f} on {os.cpu_count()} cores\n"
    )
    print("| round | request | ok | ok/s | p50 (ms) | p95 (ms) | load avg (1 min) | codes |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        label = (
            f"GET /services/{NAME}/{VERSION} (baseline)"
            if row["request"] == "GET"
            else f"POST /services/{NAME}/{VERSION} (launch, 202)"
        )
        print(
            f"| {row['round']} | {label} | {row['ok']} | {row['per_s']:.1f} |"
            f" {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['load'][0]:.2f} |"
            f" {row['codes']} |"
        )
    gets = sum(r["per_s"] for r in rows if r["request"] == "GET")
    posts = sum(r["per_s"] for r in rows if r["request"] == "POST")
    ratio = posts / gets if gets else 0.0
    print(
        f"\nlaunches accepted/s over GETs/s, same run: {ratio:.3f}x"
        f" ({posts / args.rounds:.1f} vs {gets / args.rounds:.1f} per s, mean of"
        f" {args.rounds} rounds); load average after {os.getloadavg()[0]:.2f}"
    )
    print(json.dumps({"ratio": ratio, "rows": rows}))


if __name__ == "__main__":
    main()
