"""Launch -> running of a 3-node container service through the real pipeline and host agents,
beside the same three containers started with direct `podman run` calls in the same run.

    .venv/bin/python bench/agents.py                  # 20 launches, embedded broker + SQLite
    .venv/bin/python bench/agents.py --broker amqp    # RabbitMQ + PostgreSQL
    .venv/bin/python bench/agents.py --quick          # 1 launch (smoke test)

The platform runs as the Procfile runs it: a pipeline worker, an orquestrator worker
(concurrency 2 each) and three host agents with the podman driver. Each round launches one
instance of a 3-node service (cpu 1, mem 128 MB, one disk, a static address on a private
bridge, the paas-node image answering on check port 7000; the orquestrator exits 0) through
the API, waits until it is running (the agents started the three containers, the orquestrator
ran, every check port answered) and reads launch -> running from the instance's own event
timestamps; then destroys it (destroy -> destroyed, timed the same way). In the same round,
three direct `podman run` calls with the very arguments the driver passes start the same three
containers (another instance, other addresses), and `podman rm -f` removes them. Launches are
one at a time: these are latencies, not queueing. Needs podman and busybox-static.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.nodes import free_subnet, podman  # noqa: E402
from bench.pipeline import (  # noqa: E402
    ADMIN,
    AMQP,
    PG_ADMIN,
    parse,
    percentile,
    services_reachable,
    start,
    worker_args,
)

TEMPLATE = """{% set comma = joiner(",") %}
{"nodes": {
{% for i in range(3) %}{{ comma() }}
  "n{{ i }}": {"cpu": 1, "mem": 128, "docker_image": "localhost/paas-node:1",
    "disks": {"d0": {"destination": "/data/0"}},
    "networks": {"eth0": {"networkname": {{ opts['network']|tojson }}, "type": "dynamic"}},
    "check_ports": [7000]}
{% endfor %}
}, "services": {}}
"""
ORQUESTRATOR = "import sys\nsys.exit(0)\n"
HOSTS = ("b1", "b2", "b3")


def agent(host: str, env: dict, log: Path) -> subprocess.Popen:
    """A host agent (its first report, awaited through the API, says it is up)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bigdata_paas.agent", "--host", host],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill(processes: list[subprocess.Popen]) -> None:
    """End the run's workers and agents at once (a warm shutdown costs seconds each, and
    nothing of the run is kept: the containers are removed by their labels afterwards)."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    for process in processes:
        process.wait()


def events_span(client, auth, api: str, instance_id: str, first: str, last: str) -> float:
    events = client.get(f"{api}/instances/{instance_id}/events", headers=auth).get_json()["events"]
    began = next(parse(e["at"]) for e in events if e["status"] == first)
    ended = next(parse(e["at"]) for e in reversed(events) if e["status"] == last)
    return ended - began


def wait_status(client, auth, api: str, instance_id: str, wanted: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        body = client.get(f"{api}/instances/{instance_id}", headers=auth).get_json()
        if body["status"] == wanted:
            return body
        if body["status"] == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"instance {instance_id}: {body['status']}: {body.get('error')}")
        time.sleep(0.05)


def direct_runs(config, run: str, net, host_part: int) -> tuple[float, float]:
    """Three `podman run` calls with the driver's own arguments, then three `podman rm -f`;
    (seconds to run the three, seconds to remove them). Directories and config untimed."""
    from bigdata_paas.nodes import node_spec
    from bigdata_paas.nodes.podman import PodmanDriver

    root = config.data_path / "direct"
    (root / "sdb").mkdir(parents=True, exist_ok=True)
    driver = PodmanDriver(root / "state", host="direct", labels={"paas.bench": run})
    network = f"direct{run}"
    networks = {network: {"cidr": str(net), "gateway": str(net[1])}}
    driver.ensure_network(network, str(net), str(net[1]))
    instance = uuid.uuid4().hex
    calls = []
    for i in range(3):
        placed = {
            "name": f"n{i}",
            "host": "direct",
            "cpu": 1,
            "mem": 128,
            "docker_image": "localhost/paas-node:1",
            "check_ports": [7000],
            "disks": [{"name": "d0", "origin": str(root / "sdb"), "destination": "/data/0"}],
            "networks": {"eth0": {"networkname": network, "address": str(net[host_part + i])}},
        }
        spec = node_spec(placed, instance, networks)
        driver._prepare_disks(spec)
        calls.append((spec, driver.run_args(spec, driver._config_file(spec))))
    began = time.perf_counter()
    for _spec, call in calls:
        podman(*call)
    ran = time.perf_counter() - began
    began = time.perf_counter()
    for spec, _call in calls:
        podman("rm", "--force", "--time", "1", spec.container_name)
    return ran, time.perf_counter() - began


def bench(env: dict, n: int, tmp: Path) -> dict[str, list[float]]:
    from bigdata_paas import create_app
    from bigdata_paas.cli import migrate
    from bigdata_paas.nodes.image import ensure_image
    from bigdata_paas.operations.users import ensure_admin
    from config import Config

    ensure_image()
    os.environ.update(env)
    config = Config.from_env(env)
    migrate(config.database_url)
    app = create_app(config)
    rt = app.extensions["paas"]
    ensure_admin(rt, ADMIN)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {ADMIN}"}
    api = "/bigdata/api/v1"
    net, direct_net = free_subnet(), free_subnet()
    network = f"n{uuid.uuid4().hex[:8]}"
    run = uuid.uuid4().hex[:8]
    client.post(
        f"{api}/networks",
        json={"name": network, "cidr": str(net), "gateway": str(net[1])},
        headers=auth,
    )
    options = {
        "required": {},
        "optional": {"network": network},
        "descriptions": {"network": "pool"},
    }
    client.post(f"{api}/services", json={"name": "bench", "version": "1"}, headers=auth)
    client.put(f"{api}/services/bench/1/template", data=TEMPLATE, headers=auth)
    client.put(f"{api}/services/bench/1/options", json=options, headers=auth)
    client.put(f"{api}/services/bench/1/orquestrator", data=ORQUESTRATOR, headers=auth)
    for host in HOSTS:
        client.post(
            f"{api}/hosts",
            headers=auth,
            json={
                "name": host,
                "address": "127.0.0.1",
                "cpu": 4,
                "mem": 4096,
                "disks": [{"name": "sdb", "type": "hdd", "size": 100}],
                "networks": [network],
            },
        )
    prefix = env["PAAS_QUEUE_PREFIX"]
    full_env = {**os.environ, **env}
    processes = [
        start(
            worker_args("workers.celery_app", f"{prefix}pipeline", f"ap-{run}@%h"),
            full_env,
            tmp / "pipeline.log",
        ),
        start(
            worker_args("workers.celery_app", f"{prefix}orquestrator", f"ao-{run}@%h"),
            full_env,
            tmp / "orq.log",
        ),
        *(agent(host, full_env, tmp / f"agent-{host}.log") for host in HOSTS),
    ]
    times: dict[str, list[float]] = {
        "platform launch -> running": [],
        "platform destroy -> destroyed": [],
        "podman run x 3 (direct)": [],
        "podman rm -f x 3 (direct)": [],
    }
    try:
        deadline = time.monotonic() + 60
        while not all(
            h["agent"] for h in client.get(f"{api}/hosts", headers=auth).get_json()["hosts"]
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the agents did not report")
            time.sleep(0.1)
        for _ in range(n):
            response = client.post(f"{api}/services/bench/1", json={}, headers=auth)
            assert response.status_code == 202, response.get_json()
            instance_id = response.get_json()["id"]
            wait_status(client, auth, api, instance_id, "running")
            times["platform launch -> running"].append(
                events_span(client, auth, api, instance_id, "pending", "running")
            )
            assert client.delete(f"{api}/instances/{instance_id}", headers=auth).status_code == 202
            wait_status(client, auth, api, instance_id, "destroyed")
            times["platform destroy -> destroyed"].append(
                events_span(client, auth, api, instance_id, "destroying", "destroyed")
            )
            ran, removed = direct_runs(config, run, direct_net, 10)
            times["podman run x 3 (direct)"].append(ran)
            times["podman rm -f x 3 (direct)"].append(removed)
    finally:
        kill(processes)
        for label in (f"paas.bench={run}", f"paas.deployment={config.deployment}"):
            with contextlib.suppress(RuntimeError):
                ids = podman("ps", "--all", "--quiet", "--filter", f"label={label}").stdout.split()
                if ids:
                    podman("rm", "--force", "--time", "0", *ids)
                nets = podman("network", "ls", "--quiet", "--filter", f"label={label}").stdout
                if nets.split():
                    podman("network", "rm", "--force", *nets.split())
        rt.db.dispose()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="launches")
    parser.add_argument("--quick", action="store_true", help="1 launch (a smoke test)")
    parser.add_argument("--broker", choices=("filesystem", "amqp"), default="filesystem")
    args = parser.parse_args()
    n = 1 if args.quick else args.n
    with tempfile.TemporaryDirectory(prefix="paas-bench-agents-") as tmpdir:
        tmp = Path(tmpdir)
        os.chmod(tmp, 0o711)
        env = {
            "PAAS_DATA_DIR": str(tmp / "var"),
            "PAAS_ADMIN_TOKEN": ADMIN,
            "PAAS_QUEUE_PREFIX": f"ba{uuid.uuid4().hex[:8]}.",
            "PAAS_LOG_LEVEL": "WARNING",
            "PAAS_NODE_DRIVER": "podman",
            "PAAS_HEALTH_TIMEOUT": "30",
        }
        dbname = None
        if args.broker == "amqp":
            problem = services_reachable()
            if problem:
                print(f"RabbitMQ + PostgreSQL unreachable: {problem}")
                return 1
            import psycopg

            dbname = f"paas_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{dbname}"')
            base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            env.update(PAAS_BROKER_URL=AMQP, PAAS_DATABASE_URL=f"{base}/{dbname}")
        load_before = os.getloadavg()
        try:
            times = bench(env, n, tmp)
        finally:
            if dbname:
                import psycopg

                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
                from bench.pipeline import cleanup_queues

                cleanup_queues(env, hosts=HOSTS)
        load_after = os.getloadavg()
    broker = "filesystem + SQLite" if args.broker == "filesystem" else "RabbitMQ + PostgreSQL"
    print(f"3-node container service through the agents ({broker}), {n} launches, seconds")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}", end="")
    print(f" ({os.cpu_count()} cores)")
    print(f"{'what':<32} {'p50':>7} {'p95':>7} {'mean':>7}")
    for what, values in times.items():
        print(
            f"{what:<32} {percentile(values, 50):7.3f} {percentile(values, 95):7.3f} "
            f"{statistics.fmean(values):7.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
