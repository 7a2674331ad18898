"""Launch -> scheduled of one big instance (1,000 nodes) through the real pipeline.

It starts real worker processes like the Procfile does (a pipeline worker and an orquestrator
worker) on RabbitMQ + PostgreSQL (a fresh database, a unique queue prefix; both removed after),
registers a service whose template makes ``opts['nodes']`` nodes (1 cpu, 256 MB, one disk and
one dynamic address each), adds hosts (16 cpu, 16 disks, on one network), and launches, one
after another (each waits for the one before to be running), instances of the sizes given with
``--sizes``. Each figure is read from the instance's own events: launch (first event) ->
scheduled (the event whose status becomes ``scheduled``), and each hop between.

Baselines measured in the same run, on the same database and hosts:
- the placement engine alone placing the same 1,000 nodes on the same free hosts
  (allocations.node_demands + load_hosts/load_networks, then place(); only place() timed);
- a plain bulk INSERT of N rows shaped like nodes (name, cpu, mem, JSON spec) into a scratch
  table in one statement and one commit: the floor of what storing N nodes costs;
- the 10-node instance in --sizes: the pipeline's fixed cost.

    PYTHONPATH=$PWD .venv/bin/python bench/big_instance.py [--sizes 10,200,200,200,1000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import (  # noqa: E402
    ADMIN,
    AMQP,
    BASE_TMP,
    PG_ADMIN,
    cleanup_queues,
    parse,
    services_reachable,
    start_workers,
    stop,
)

TEMPLATE = """{% set comma = joiner(",") %}
{"nodes": {
{% for i in range(opts['nodes']) %}{{ comma() }}
  "n{{ i }}": {"cpu": 1, "mem": 256, "disks": {"d0": {"destination": "/data/0"}},
               "networks": {"eth0": {"networkname": "benchnet", "type": "dynamic"}}}
{% endfor %}
}, "services": {"bench": {"nodes": [
{% for i in range(opts['nodes']) %}"n{{ i }}"{% if not loop.last %},{% endif %}{% endfor %}
]}}}
"""
OPTIONS = {"required": {"nodes": 3}, "descriptions": {"nodes": "number of nodes"}}
ORQUESTRATOR = "import sys\nsys.exit(0)\n"
API = "/bigdata/api/v1"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def wait_done(client, instance_id: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"{API}/instances/{instance_id}", headers=AUTH).get_json()["status"]
        if status in ("running", "failed"):
            return status
        if time.monotonic() > deadline:
            raise RuntimeError(f"instance {instance_id} still {status}")
        time.sleep(0.1)


def hops(client, instance_id: str) -> tuple[float, list[tuple[str, float]]]:
    """launch -> scheduled, and each hop (status -> status, seconds) up to scheduled."""
    events = client.get(f"{API}/instances/{instance_id}/events", headers=AUTH).get_json()["events"]
    first = parse(events[0]["at"])
    steps, scheduled = [], None
    for before, after in itertools.pairwise(events):
        steps.append(
            (f"{before['status']}->{after['status']}", parse(after["at"]) - parse(before["at"]))
        )
        if after["status"] == "scheduled":
            scheduled = parse(after["at"]) - first
            break
    if scheduled is None:
        raise RuntimeError(f"instance {instance_id} never scheduled: {events[-3:]}")
    return scheduled, steps


def engine_alone(rt, n: int) -> float:
    """Seconds for the engine alone to place n nodes of the template on the free hosts now."""
    from bigdata_paas.operations import allocations
    from bigdata_paas.placement import place
    from bigdata_paas.rendering import validate_spec

    nodes = {
        f"n{i}": {
            "cpu": 1,
            "mem": 256,
            "disks": {"d0": {"destination": "/data/0"}},
            "networks": {"eth0": {"networkname": "benchnet", "type": "dynamic"}},
        }
        for i in range(n)
    }
    spec = validate_spec(
        {"nodes": nodes, "services": {"bench": {"nodes": list(nodes)}}}, max_nodes=n
    )
    with rt.db.session() as session:
        demands = allocations.node_demands(spec)
        hosts = allocations.load_hosts(session)
        networks = allocations.load_networks(session)
        session.rollback()
    began = time.perf_counter()
    place(demands, hosts, networks, strategy=rt.config.PLACEMENT_STRATEGY)
    return time.perf_counter() - began


def bulk_insert(rt, n: int) -> float:
    """Seconds for one INSERT of n node-shaped rows into a scratch table, and its commit."""
    from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, insert

    meta = MetaData()
    table = Table(
        "bench_scratch_nodes",
        meta,
        Column("id", Integer, primary_key=True),
        Column("instance_id", String(36)),
        Column("name", String(64)),
        Column("cpu", Integer),
        Column("mem", Integer),
        Column("spec", JSON),
    )
    meta.create_all(rt.db.engine)
    rows = [
        {
            "instance_id": "x",
            "name": f"n{i}",
            "cpu": 1,
            "mem": 256,
            "spec": {"cpu": 1, "mem": 256, "disks": {"d0": {"destination": "/data/0"}}},
        }
        for i in range(n)
    ]
    try:
        with rt.db.session() as session:
            began = time.perf_counter()
            session.execute(insert(table), rows)
            session.commit()
            return time.perf_counter() - began
    finally:
        meta.drop_all(rt.db.engine)


def bench(env: dict, sizes: list[int], hosts: int, tmp: Path) -> tuple[list[dict], dict]:
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

    def ok(response, *codes):
        assert response.status_code in codes, (response.status_code, response.get_json())
        return response

    ok(client.post(f"{API}/services", json={"name": "big", "version": "1"}, headers=AUTH), 201)
    ok(client.put(f"{API}/services/big/1/template", data=TEMPLATE, headers=AUTH), 200, 204)
    ok(client.put(f"{API}/services/big/1/options", json=OPTIONS, headers=AUTH), 200, 204)
    ok(client.put(f"{API}/services/big/1/orquestrator", data=ORQUESTRATOR, headers=AUTH), 200, 204)
    net = {"name": "benchnet", "cidr": "10.77.0.0/20", "gateway": "10.77.0.1"}
    ok(client.post(f"{API}/networks", json=net, headers=AUTH), 201)
    for i in range(hosts):
        body = {
            "name": f"h{i}",
            "address": "127.0.0.1",
            "cpu": 16,
            "mem": 65536,
            "disks": [{"name": f"d{j}", "type": "hdd", "size": 100} for j in range(16)],
            "networks": ["benchnet"],
        }
        ok(client.post(f"{API}/hosts", headers=AUTH, json=body), 201)

    baselines = {
        "engine": (engine_alone(rt, max(sizes)), load()),
        "insert": (bulk_insert(rt, max(sizes)), load()),
    }
    workers = start_workers(env, tmp)
    rows = []
    try:
        for size in sizes:
            response = client.post(f"{API}/services/big/1", json={"nodes": size}, headers=AUTH)
            ok(response, 202)
            instance_id = response.get_json()["id"]
            final = wait_done(client, instance_id)
            scheduled, steps = hops(client, instance_id)
            rows.append(
                {
                    "nodes": size,
                    "scheduled": scheduled,
                    "hops": steps,
                    "final": final,
                    "load": load(),
                }
            )
            print(
                f"{size} nodes: launch -> scheduled {scheduled:.3f} s ({final}); "
                + ", ".join(f"{k} {v:.3f}" for k, v in steps)
                + f"; load {load()}",
                flush=True,
            )
    finally:
        stop(workers)
        rt.db.dispose()
    return rows, baselines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,200,200,200,1000", help="instance sizes, in order")
    parser.add_argument("--hosts", type=int, default=0, help="hosts (default: enough, 16 cpu)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    hosts = args.hosts or (sum(sizes) * 12 // 10) // 16 + 1
    problem = services_reachable()
    if problem:
        print(f"RabbitMQ + PostgreSQL unreachable: {problem}")
        sys.exit(1)
    import psycopg

    dbname = f"paas_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    with tempfile.TemporaryDirectory(prefix="paas-bench-big-", dir=BASE_TMP) as tmpdir:
        tmp = Path(tmpdir)
        env = {
            "PAAS_DATA_DIR": str(tmp / "var"),
            "PAAS_ADMIN_TOKEN": ADMIN,
            "PAAS_QUEUE_PREFIX": f"bench{uuid.uuid4().hex[:8]}.",
            "PAAS_LOG_LEVEL": "WARNING",
            "PAAS_MAX_NODES": str(max(max(sizes), 200)),
            "PAAS_BROKER_URL": AMQP,
            "PAAS_DATABASE_URL": f"{base}/{dbname}",
        }
        try:
            rows, baselines = bench(env, sizes, hosts, tmp)
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            cleanup_queues(env, hosts=[f"h{i}" for i in range(hosts)])
    biggest = max(sizes)
    print(
        f"\nbig instance benchmark: RabbitMQ + PostgreSQL, {hosts} hosts x 16 cpu x 16 disks on one"
        f" network; instances launched one after another (each 1 cpu, 1 disk, 1 address per node)"
        f"; baselines from the same run\n"
    )
    print("| what | nodes | launch -> scheduled (s) | hops (s) | load avg 1/5/15 |")
    print("|---|---|---|---|---|")
    for row in rows:
        hop_text = ", ".join(f"{k} {v:.3f}" for k, v in row["hops"])
        print(
            f"| bigdata-paas launch -> scheduled | {row['nodes']} | {row['scheduled']:.3f} | "
            f"{hop_text} | {row['load']} |"
        )
    engine, engine_load = baselines["engine"]
    insert_s, insert_load = baselines["insert"]
    print(
        f"| baseline: placement engine alone, same hosts | {biggest} | {engine:.3f} | place() only"
        f" | {engine_load} |"
    )
    print(
        f"| baseline: one bulk INSERT of node-shaped rows + commit | {biggest} | {insert_s:.3f} |"
        f" storing floor | {insert_load} |"
    )
    print(json.dumps({"rows": rows, "baselines": baselines}))


if __name__ == "__main__":
    main()
