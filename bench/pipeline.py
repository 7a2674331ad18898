"""Launch -> running latency of the real pipeline, next to a bare 5-task Celery chain.

For each broker (the embedded filesystem broker on SQLite; RabbitMQ on
PostgreSQL when both answer), it starts real worker processes like the
Procfile does (a pipeline worker and an orquestrator worker), launches N
instances of a 3-node service whose orquestrator exits 0 at once, and reads
launch -> running from the instances' own event timestamps. In the same run it
sends N bare chains of 5 no-op tasks to a worker on the same broker.

    .venv/bin/python bench/pipeline.py [--n 50] [--brokers filesystem,amqp] [--sequential]

``--sequential``: one launch (and one bare chain) at a time, each waited for before the next:
latency without queueing. Without it, all N are sent back to back: throughput.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: taken before anything points tempfile at a broker folder
BASE_TMP = tempfile.gettempdir()
ADMIN = "bench-admin-token-0123456789abcdef"
PG_ADMIN = os.environ.get("PAAS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP = os.environ.get("PAAS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

TEMPLATE = """{% set comma = joiner(",") %}
{"nodes": {
{% for i in range(opts['nodes']) %}{{ comma() }}
  "n{{ i }}": {"cpu": 1, "mem": 256, "disks": {"d0": {"destination": "/data/0"}}}
{% endfor %}
}, "services": {"bench": {"nodes": [
{% for i in range(opts['nodes']) %}"n{{ i }}"{% if not loop.last %},{% endif %}{% endfor %}
]}}}
"""
OPTIONS = {"required": {"nodes": 3}, "descriptions": {"nodes": "number of nodes"}}
ORQUESTRATOR = "import sys\nsys.exit(0)\n"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def parse(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while b" ready." not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return process


def stop(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        if p.poll() is None:
            os.killpg(p.pid, 15)
    for p in processes:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)


def worker_args(app: str, queues: str, name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "-Q",
        queues,
        "-n",
        name,
        "--concurrency",
        "2",
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
    ]


def start_workers(env: dict, tmp: Path) -> list[subprocess.Popen]:
    """A pipeline worker and an orquestrator worker, as the Procfile starts them; logs in tmp."""
    prefix = env["PAAS_QUEUE_PREFIX"]
    full_env = {**os.environ, **env}
    return [
        start(
            worker_args(
                "workers.celery_app", f"{prefix}{queue}", f"b{queue[0]}-{uuid.uuid4().hex[:6]}@%h"
            ),
            full_env,
            tmp / log,
        )
        for queue, log in (("pipeline", "pipeline.log"), ("orquestrator", "orq.log"))
    ]


def bench_platform(env: dict, n: int, tmp: Path, sequential: bool = False) -> dict:
    from bigdata_paas import create_app
    from bigdata_paas.cli import migrate
    from bigdata_paas.operations.users import ensure_admin
    from config import Config

    os.environ.update(env)
    config = Config.from_env(env)
    migrate(config.database_url)
    app = create_app(config)
    rt = app.extensions["paas"]
    ensure_admin(rt, ADMIN)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {ADMIN}"}
    api = "/bigdata/api/v1"
    client.post(f"{api}/services", json={"name": "bench", "version": "1"}, headers=auth)
    client.put(f"{api}/services/bench/1/template", data=TEMPLATE, headers=auth)
    client.put(f"{api}/services/bench/1/options", json=OPTIONS, headers=auth)
    client.put(f"{api}/services/bench/1/orquestrator", data=ORQUESTRATOR, headers=auth)
    for i in range((3 * n) // 16 + 4):
        client.post(
            f"{api}/hosts",
            headers=auth,
            json={
                "name": f"h{i}",
                "address": "127.0.0.1",
                "cpu": 16,
                "mem": 65536,
                "disks": [{"name": f"d{j}", "type": "hdd", "size": 100} for j in range(16)],
            },
        )
    workers = start_workers(env, tmp)
    try:
        ids = []
        if sequential:  # one warm-up launch: the workers' first task imports and connects
            ids.append(launch_and_wait(client, api, auth))
            ids.clear()
        began = time.time()
        for _ in range(n):
            if sequential:
                ids.append(launch_and_wait(client, api, auth))
                continue
            response = client.post(f"{api}/services/bench/1", json={}, headers=auth)
            assert response.status_code == 202, response.get_json()
            ids.append(response.get_json()["id"])
        launched = time.time()
        deadline = time.monotonic() + 300
        while True:
            page = client.get(f"{api}/instances?per_page=500", headers=auth).get_json()
            statuses = [item["status"] for item in page["items"]]
            if all(s in ("running", "failed") for s in statuses):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all running: {statuses}")
            time.sleep(0.25)
        latencies, last, steps = [], 0.0, {}
        for i in ids:
            events = client.get(f"{api}/instances/{i}/events", headers=auth).get_json()["events"]
            first = parse(events[0]["at"])
            done = parse(events[-1]["at"])
            assert events[-1]["status"] == "running", events[-1]
            latencies.append(done - first)
            last = max(last, done)
            for before, after in itertools.pairwise(events):
                key = f"{before['status']}->{after['status']}"
                steps.setdefault(key, []).append(parse(after["at"]) - parse(before["at"]))
        print(
            "mean time per hop (s):",
            ", ".join(f"{k} {statistics.mean(v):.3f}" for k, v in steps.items()),
        )
        return {
            "p50": statistics.median(latencies),
            "p95": percentile(latencies, 95),
            "rate": n / (last - began),
            "accept_rate": n / (launched - began),
            "failed": statuses.count("failed"),
        }
    finally:
        stop(workers)
        rt.db.dispose()


def launch_and_wait(client, api: str, auth: dict) -> str:
    """Launch one instance and wait until it is running or failed.

    Polls every 20 ms: the latency comes from the instance's own events, not from this loop,
    which would otherwise take a core from the workers it measures."""
    response = client.post(f"{api}/services/bench/1", json={}, headers=auth)
    assert response.status_code == 202, response.get_json()
    instance_id = response.get_json()["id"]
    deadline = time.monotonic() + 60
    while client.get(f"{api}/instances/{instance_id}", headers=auth).get_json()["status"] not in (
        "running",
        "failed",
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"instance {instance_id} did not reach running")
        time.sleep(0.02)
    return instance_id


def bench_bare(env: dict, n: int, tmp: Path, sequential: bool = False) -> dict:
    from bench.bare_chain import done_file, make_bare_app
    from config import Config

    full_env = {**os.environ, **env, "PAAS_BARE_WORKER": "1"}
    prefix = env["PAAS_QUEUE_PREFIX"]
    worker = start(
        worker_args("bench.bare_chain", f"{prefix}bare", f"bb-{uuid.uuid4().hex[:6]}@%h"),
        full_env,
        tmp / "bare.log",
    )
    try:
        config = Config.from_env(env)
        app = make_bare_app(config)
        step = app.tasks["bare.step"]
        from celery import chain

        sent = {}
        done = Path(done_file(config))
        began = time.time()
        for i in range(-1 if sequential else 0, n):  # sequential: one warm-up chain
            cid = f"c{i}"
            sent[cid] = time.time()
            chain(*(step.si(cid, last=(k == 4)) for k in range(5))).apply_async()
            while sequential and not (done.exists() and f"{cid} " in done.read_text()):
                time.sleep(0.001)
        sent.pop("c-1", None)
        n_done = n + (1 if sequential else 0)
        deadline = time.monotonic() + 300
        while not done.exists() or len(done.read_text().splitlines()) < n_done:
            if time.monotonic() > deadline:
                raise RuntimeError("bare chains did not finish")
            time.sleep(0.1)
        ends = dict(line.split() for line in done.read_text().splitlines())
        latencies = [float(ends[c]) - sent[c] for c in sent]
        last = max(float(ends[c]) for c in sent)
        return {
            "p50": statistics.median(latencies),
            "p95": percentile(latencies, 95),
            "rate": n / (last - began),
        }
    finally:
        stop([worker])
        app.close()


@contextlib.contextmanager
def keep_or_temp(broker: str):
    """A temp folder for one broker's run; kept (and printed) with PAAS_BENCH_KEEP=1."""
    if os.environ.get("PAAS_BENCH_KEEP") == "1":
        path = tempfile.mkdtemp(prefix=f"paas-bench-{broker}-", dir=BASE_TMP)
        print(f"keeping {path}")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"paas-bench-{broker}-", dir=BASE_TMP) as path:
        yield path


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="instances (and bare chains)")
    parser.add_argument("--brokers", default="filesystem,amqp")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="one launch (and one chain) at a time, each waited for: latency without queueing",
    )
    args = parser.parse_args()
    rows = []
    for broker in args.brokers.split(","):
        with keep_or_temp(broker) as tmpdir:
            tmp = Path(tmpdir)
            env = {
                "PAAS_DATA_DIR": str(tmp / "var"),
                "PAAS_ADMIN_TOKEN": ADMIN,
                "PAAS_QUEUE_PREFIX": f"bench{uuid.uuid4().hex[:8]}.",
                "PAAS_LOG_LEVEL": "WARNING",
            }
            dbname = None
            if broker == "amqp":
                problem = services_reachable()
                if problem:
                    print(f"skipping RabbitMQ + PostgreSQL: {problem}")
                    continue
                import psycopg

                dbname = f"paas_bench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{dbname}"')
                base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
                env.update(PAAS_BROKER_URL=AMQP, PAAS_DATABASE_URL=f"{base}/{dbname}")
            try:
                load_before = os.getloadavg()[0]
                platform = bench_platform(env, args.n, tmp, args.sequential)
                bare = bench_bare(env, args.n, tmp, args.sequential)
                platform["load"] = bare["load"] = (load_before, os.getloadavg()[0])
            finally:
                if dbname:
                    import psycopg

                    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
                    cleanup_queues(env, hosts=[f"h{i}" for i in range((3 * args.n) // 16 + 4)])
            label = "filesystem + SQLite" if broker == "filesystem" else "RabbitMQ + PostgreSQL"
            rows.append((label, platform, bare))
    how = "one at a time, each waited for" if args.sequential else "sent back to back"
    print(
        f"\npipeline benchmark: {args.n} launches of a 3-node service (no-op orquestrator),"
        f" vs {args.n} bare 5-task chains on the same broker, {how}, same run\n"
    )
    print(
        "| broker | what | p50 latency (s) | p95 latency (s) | instances/s |"
        " load avg 1 min (start - end) |"
    )
    print("|---|---|---|---|---|---|")
    for label, platform, bare in rows:
        load = "{:.2f} - {:.2f}".format(*platform["load"])
        print(
            f"| {label} | bigdata-paas launch -> running | {platform['p50']:.3f} | "
            f"{platform['p95']:.3f} | {platform['rate']:.1f} | {load} |"
        )
        print(
            f"| {label} | bare Celery 5-task chain (baseline) | {bare['p50']:.3f} | "
            f"{bare['p95']:.3f} | {bare['rate']:.1f} | {load} |"
        )
    for label, platform, bare in rows:
        print(
            f"{label}: launches accepted at {platform['accept_rate']:.1f}/s; "
            f"p50 ratio platform/bare = {platform['p50'] / bare['p50']:.1f}x; "
            f"failed = {platform['failed']}"
        )
    print(json.dumps({label: {"platform": p, "bare": b} for label, p, b in rows}))


def cleanup_queues(env: dict, hosts=()) -> None:
    """Delete the run's queues: the platform's, the bare chain's, and each host's (adding a
    host asks its agent to report on the host's durable queue)."""
    from kombu import Connection

    prefix = env["PAAS_QUEUE_PREFIX"]
    with Connection(AMQP) as conn:
        channel = conn.default_channel
        for name in ("pipeline", "orquestrator", "bare", *(f"host.{h}" for h in hosts)):
            try:
                channel.queue_delete(prefix + name)
            except Exception:  # the queue may not exist
                channel = conn.channel()


if __name__ == "__main__":
    main()
