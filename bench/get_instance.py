"""GET /instances/{id} of a 20-node instance through gunicorn, next to a bare Flask route that
answers the same JSON under the same gunicorn settings.

On a fresh PostgreSQL database (PAAS_TEST_PG_URL, or the local default) it migrates, stores
a user and, as the pipeline leaves it once running, a 20-node instance of theirs (nodes placed
on hosts, with disks, addresses and their agent's runtime), captures the body its owner gets
from GET /instances/{id}, then starts two gunicorns as the Procfile does
(``gunicorn -c config/gunicorn.py``, gthread, the same workers and threads): the app
(``wsgi:app``) and ``bench/bare_instance.py``, whose one route answers the captured body.
Both are driven by the same client load: ``--threads`` keep-alive connections spread over
``--procs`` client processes, for ``--seconds`` a round, the rounds interleaved (app, bare,
app, bare...) so machine load weighs on both alike. It prints requests/s, p50/p95, the CPU
each request cost the server (gunicorn's processes, and for the app the database's backends
too: a figure less swayed by other load) and the ratio per round and overall, with
``os.getloadavg()``, then drops the database. The answer is checked byte for byte against
``InstanceOut().dump(Instance.to_dict())`` first, and every answer during the rounds against it.
``--profile N`` instead cProfiles N GETs in-process (CPU time) and stops.

    .venv/bin/python bench/get_instance.py [--rounds 3] [--seconds 5] [--threads 16] [--profile N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import database_cpu, free_port, stop_group, tree_cpu  # noqa: E402
from bench.pipeline import ADMIN, PG_ADMIN, percentile  # noqa: E402

API = "/bigdata/api/v1"
BIN = Path(sys.executable).parent
NODES = 20
HOSTS = 5


def store_instance(rt) -> tuple[str, str]:
    """A user and a running 20-node instance of theirs, placed; returns (token, instance id)."""
    from bigdata_paas.models import Host, Instance, Node, User
    from bigdata_paas.operations.users import create_user

    token = create_user(rt, "owner", actor="bench")["token"]
    now = datetime.now(UTC)
    names = [f"slave{i}" if i else "master" for i in range(NODES)]
    with rt.db.session() as session:
        user = session.query(User).filter_by(name="owner").one()
        hosts = [
            Host(
                name=f"host{h}",
                address=f"192.0.2.{h + 1}",
                cpu=64,
                mem=262144,
                networks=["clusternet"],
            )
            for h in range(HOSTS)
        ]
        session.add_all(hosts)
        session.flush()
        spec_nodes = {}
        for name in names:
            spec_nodes[name] = {
                "cpu": 2,
                "mem": 4096,
                "image": "paas-node",
                "disks": {
                    "d0": {"type": "hdd", "destination": "/data/0", "mode": "rw"},
                    "d1": {"type": "hdd", "destination": "/data/1", "mode": "rw"},
                },
                "networks": {"eth0": {"networkname": "clusternet", "type": "dynamic"}},
                "services": ["namenode", "resourcemanager"]
                if name == "master"
                else ["datanode", "nodemanager"],
                "check_ports": [8020, 8088] if name == "master" else [50010, 8042],
            }
        options = {"slaves.number": NODES - 1, "slaves.mem": 4096, "cluster.name": "bench"}
        instance = Instance(
            user_id=user.id,
            service_name="cdh",
            service_version="5.7.2",
            status="running",
            options=options,
            merged_options={**options, "master.mem": 4096, "dfs.replication": 3},
            spec={
                "nodes": spec_nodes,
                "services": {
                    "hdfs": {"nodes": names, "ports": {"namenode": 8020}},
                    "yarn": {"nodes": names, "ports": {"resourcemanager": 8088}},
                },
            },
            created_at=now,
            updated_at=now,
            queued_at=now,
            started_at=now,
            held_nodes=NODES,
            held_cpu=2 * NODES,
            held_mem=4096 * NODES,
            held_disks=2 * NODES,
        )
        session.add(instance)
        session.flush()
        for i, name in enumerate(names):
            host = hosts[i % HOSTS]
            address = f"10.88.0.{i + 10}"
            spec = spec_nodes[name]
            disks = [
                {
                    **body,
                    "name": disk,
                    "host_disk": f"sd{i // HOSTS}{disk}",
                    "type": "hdd",
                    "size": 1000,
                    "origin": f"/data/sd{i // HOSTS}{disk}",
                }
                for disk, body in spec["disks"].items()
            ]
            networks = {
                "eth0": {
                    **spec["networks"]["eth0"],
                    "address": address,
                    "netmask": "255.255.254.0",
                    "prefixlen": 23,
                    "gateway": "10.88.0.1",
                    "bridge": "br-clusternet",
                }
            }
            placement = {
                **{k: v for k, v in spec.items() if k not in ("disks", "networks")},
                "name": name,
                "host": host.name,
                "host_address": host.address,
                "address": address,
                "disks": disks,
                "networks": networks,
            }
            runtime = {
                "state": "running",
                "host": host.name,
                "at": now.isoformat().replace("+00:00", "Z"),
                "driver": "podman",
                "runtime_id": uuid.uuid4().hex + uuid.uuid4().hex,
                "name": f"paas-{instance.id[:8]}-{name}",
                "addresses": {"eth0": address},
            }
            session.add(
                Node(
                    instance_id=instance.id,
                    name=name,
                    cpu=spec["cpu"],
                    mem=spec["mem"],
                    spec=spec,
                    host_id=host.id,
                    placement=placement,
                    runtime=runtime,
                )
            )
            host.cpu_used += spec["cpu"]
            host.mem_used += spec["mem"]
        session.commit()
        return token, instance.id


def start_gunicorn(app: str, env: dict, port: int, log: Path) -> subprocess.Popen:
    """gunicorn as the Procfile starts it (its config file), on ``port``; returns when it
    answers."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "--bind", f"127.0.0.1:{port}", app],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_group(process)
                problem = f"gunicorn ({app}) did not start: {log.read_text()[-3000:]}"
                raise RuntimeError(problem) from None
            time.sleep(0.2)


def client(
    port: int, path: str, headers: dict, threads: int, begin: float, end: float, body: bytes
) -> tuple[int, list[float], int]:
    """``threads`` keep-alive connections sending GETs from wall-clock ``begin`` to ``end``;
    returns (answers, latencies in ms, wrong answers)."""
    counts, latencies, wrong = [0] * threads, [[] for _ in range(threads)], [0] * threads

    def work(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        time.sleep(max(0.0, begin - time.time()))
        while time.time() < end:
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                wrong[i] += 1
                continue
            latencies[i].append((time.perf_counter() - started) * 1000)
            counts[i] += 1
            if response.status != 200 or data != body:
                wrong[i] += 1
        conn.close()

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(counts), [x for part in latencies for x in part], sum(wrong)


def drive(
    pool, procs: int, threads: int, seconds: float, port: int, path, headers, body, cpu=None
) -> dict:
    """The same load on one server: ``threads`` connections over ``procs`` processes.
    ``cpu()``: the CPU seconds the server (and its database) used so far."""
    cpu_before = cpu() if cpu else 0.0
    begin = time.time() + 0.5
    end = begin + seconds
    shares = [threads // procs + (1 if i < threads % procs else 0) for i in range(procs)]
    futures = [
        pool.submit(client, port, path, headers, share, begin, end, body) for share in shares
    ]
    answers, latencies, wrong = 0, [], 0
    for future in futures:
        n, lat, bad = future.result()
        answers += n
        latencies += lat
        wrong += bad
    cpu_used = cpu() - cpu_before if cpu else 0.0
    return {
        "cpu_ms": 1000 * cpu_used / answers if answers else float("nan"),
        "per_s": answers / seconds,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": percentile(latencies, 95) if latencies else float("nan"),
        "wrong": wrong,
        "load": os.getloadavg()[0],
    }


def profile_in_process(app, path: str, headers: dict, n: int) -> None:
    """cProfile ``n`` GETs through Flask's test client (no gunicorn, no network)."""
    import cProfile
    import pstats

    client = app.test_client()
    for _ in range(50):
        client.get(path, headers=headers)
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(n):
        client.get(path, headers=headers)
    plain = (time.perf_counter() - started) * 1000 / n
    cpu = (time.process_time() - cpu_started) * 1000 / n
    with cProfile.Profile(time.process_time) as profile:  # CPU time, not waits
        for _ in range(n):
            client.get(path, headers=headers)
    print(
        f"{plain:.2f} ms a GET in-process without the profiler, {cpu:.2f} ms of it CPU "
        f"(load {os.getloadavg()[0]:.2f})"
    )
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of each")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of a round")
    parser.add_argument("--threads", type=int, default=16, help="keep-alive client connections")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--keep", action="store_true", help="keep the database (name printed)")
    parser.add_argument(
        "--profile", type=int, default=0, help="cProfile this many GETs in-process, then stop"
    )
    args = parser.parse_args()

    import psycopg

    from bigdata_paas import create_app
    from bigdata_paas.cli import migrate
    from bigdata_paas.operations.users import ensure_admin
    from config import Config

    dbname = f"paas_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    servers: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix="paas-bench-getone-"))
    rt = None
    try:
        env = {
            "PAAS_DATABASE_URL": f"{base}/{dbname}",
            "PAAS_BROKER_URL": "memory://",
            "PAAS_ADMIN_TOKEN": ADMIN,
            "PAAS_LOG_LEVEL": "WARNING",
            "PAAS_DATA_DIR": str(tmp / "var"),
            "PAAS_BENCH_BODY": str(tmp / "body.json"),
        }
        os.environ.update(env)
        config = Config.from_env(env)
        migrate(config.database_url)
        app = create_app(config)
        rt = app.extensions["paas"]
        ensure_admin(rt, ADMIN)
        token, instance_id = store_instance(rt)
        path = f"{API}/instances/{instance_id}"
        headers = {"Authorization": f"Bearer {token}"}
        answer = app.test_client().get(path, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_data()
        assert len(json.loads(body)["nodes"]) == NODES
        with app.app_context(), rt.db.session() as session:  # what the ORM and the schema say
            from flask import jsonify

            from bigdata_paas.api.schemas import InstanceOut
            from bigdata_paas.models import Instance

            orm = jsonify(InstanceOut().dump(session.get(Instance, instance_id).to_dict()))
        assert body == orm.get_data(), "the answer differs from the schema's dump of to_dict()"
        Path(env["PAAS_BENCH_BODY"]).write_bytes(body)
        if args.profile:
            profile_in_process(app, path, headers, args.profile)
            return
        rt.db.dispose()

        web_port, bare_port = free_port(), free_port()
        servers.append(start_gunicorn("wsgi:app", env, web_port, tmp / "web.log"))
        servers.append(start_gunicorn("bench.bare_instance:app", env, bare_port, tmp / "bare.log"))
        # the live app answers exactly what was captured (the bare route answers it by
        # construction); each answer of either is checked against it during the rounds
        conn = http.client.HTTPConnection("127.0.0.1", web_port)
        conn.request("GET", path, headers=headers)
        live = conn.getresponse()
        assert live.status == 200 and live.read() == body, "gunicorn answered another body"
        conn.close()
        print(
            f"GET {path}: {len(body)} bytes, {NODES} nodes; {config.WEB_WORKERS} gunicorn "
            f"workers x {config.WEB_THREADS} threads (gthread); {args.threads} keep-alive "
            f"clients in {args.procs} processes, {args.seconds:g} s a round"
        )
        rows = []
        with ProcessPoolExecutor(max_workers=args.procs) as pool:
            for port in (web_port, bare_port):  # warm both
                drive(pool, args.procs, args.threads, 1.0, port, path, headers, body)
            web, bare = servers

            def web_cpu() -> float:
                return tree_cpu(web.pid) + database_cpu(dbname)

            def bare_cpu() -> float:
                return tree_cpu(bare.pid)

            for r in range(1, args.rounds + 1):
                for label, port, cpu in (("app", web_port, web_cpu), ("bare", bare_port, bare_cpu)):
                    figures = drive(
                        pool, args.procs, args.threads, args.seconds, port, path, headers, body, cpu
                    )
                    rows.append((r, label, figures))
                    print(
                        f"round {r} {label:4}: {figures['per_s']:7.0f}/s p50 "
                        f"{figures['p50']:.2f} ms p95 {figures['p95']:.2f} ms, "
                        f"server CPU {figures['cpu_ms']:.2f} ms a request "
                        f"(load {figures['load']:.2f}; wrong {figures['wrong']})"
                    )
        print(
            "\n| round | GET /instances/{id}, 20 nodes (req/s) | p50 ms | p95 ms | CPU ms/req "
            "| bare Flask, same JSON (req/s) | p50 ms | p95 ms | CPU ms/req | ratio "
            "| load avg (1 min) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        totals = {"app": [], "bare": []}
        for r in range(1, args.rounds + 1):
            a = next(f for rr, label, f in rows if rr == r and label == "app")
            b = next(f for rr, label, f in rows if rr == r and label == "bare")
            totals["app"].append(a["per_s"])
            totals["bare"].append(b["per_s"])
            print(
                f"| {r} | {a['per_s']:.0f} | {a['p50']:.2f} | {a['p95']:.2f} | {a['cpu_ms']:.2f} "
                f"| {b['per_s']:.0f} | {b['p50']:.2f} | {b['p95']:.2f} | {b['cpu_ms']:.2f} "
                f"| {a['per_s'] / b['per_s']:.2f}x "
                f"| {a['load']:.2f} / {b['load']:.2f} |"
            )
        app_rate = statistics.mean(totals["app"])
        bare_rate = statistics.mean(totals["bare"])
        print(
            f"| all | {app_rate:.0f} | | | | {bare_rate:.0f} | | | | "
            f"{app_rate / bare_rate:.2f}x | {os.getloadavg()} |"
        )
        wrong = sum(f["wrong"] for _r, _l, f in rows)
        if wrong:
            print(f"WARNING: {wrong} answers were not the captured 200 body")
    finally:
        for server in servers:
            stop_group(server)
        if rt is not None:
            rt.db.dispose()
        if args.keep:
            print(f"kept database {dbname} and {tmp}")
        else:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
