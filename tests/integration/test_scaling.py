"""Scaling through the Procfile: every copy honcho starts is a worker of its own.

``make run SCALE=worker=3,orquestrator=2,beat=2`` on PostgreSQL and RabbitMQ (honcho ``-c``, as
the Makefile passes it): Flower's API lists five distinct workers, named by their copy; 30
launches of a one-node service all reach running, and their pipeline steps ran on more than one
of the three pipeline workers (Flower's task list, from the workers' task events). The second
beat, a mistake, does no harm: the platform keeps running and every sweep succeeds.
"""

from __future__ import annotations

import base64
import json
import socket
import urllib.request

import pytest

from tests.conftest import wait_until
from tests.integration.test_platform_restart import Platform

pytestmark = pytest.mark.integration

NETWORK = "scalenet"
TEMPLATE = (
    '{"nodes": {"n0": {"cpu": 1, "mem": 256,'
    ' "networks": {"eth0": {"networkname": "' + NETWORK + '", "type": "dynamic"}}}},'
    ' "services": {"scale": {"nodes": ["n0"]}}}'
)
OPTIONS = {"required": {"label": "x"}, "descriptions": {"label": "a free-form label"}}
LAUNCHES = 30
FLOWER_PASSWORD = "scaling-test-flower-password"


@pytest.fixture
def platform(data_root, tmp_path, services_env):
    platform = Platform(data_root, tmp_path)
    platform.env.update(
        {
            "PAAS_DATABASE_URL": services_env["PAAS_DATABASE_URL"],
            "PAAS_BROKER_URL": services_env["PAAS_BROKER_URL"],
            "PAAS_QUEUE_PREFIX": services_env["PAAS_QUEUE_PREFIX"],
            "PAAS_AGENT_HOSTS": "",  # the orquestrator alone deploys: no agent, no node
            "PAAS_PIPELINE_CONCURRENCY": "1",
            "PAAS_ORQUESTRATOR_CONCURRENCY": "1",
            "PAAS_FLOWER_PASSWORD": FLOWER_PASSWORD,
            "PAAS_SWEEP_INTERVAL": "1",  # two beats (by mistake) sending sweeps all along
        }
    )
    try:
        yield platform
    finally:
        platform.kill()


def flower(platform: Platform, path: str):
    request = urllib.request.Request(f"http://127.0.0.1:{platform.flower_port}{path}")
    secret = base64.b64encode(f"admin:{FLOWER_PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {secret}")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def flower_workers(platform: Platform) -> set[str]:
    """The workers Flower lists that consume this deployment's queues (other test runs on
    the shared RabbitMQ answer Flower's broadcast too)."""
    prefix = platform.env["PAAS_QUEUE_PREFIX"]
    try:
        workers = flower(platform, "/api/workers?refresh=1")
    except OSError:
        return set()
    return {
        name
        for name, info in workers.items()
        if any(q.get("name", "").startswith(prefix) for q in info.get("active_queues") or [])
    }


def register(platform: Platform) -> None:
    for method, path, body in (
        ("POST", "/services", {"name": "scale", "version": "1.0"}),
        ("PUT", "/services/scale/1.0/template", TEMPLATE.encode()),
        ("PUT", "/services/scale/1.0/options", OPTIONS),
        ("PUT", "/services/scale/1.0/orquestrator", b"#!/bin/sh\nexit 0\n"),
        ("POST", "/networks", {"name": NETWORK, "cidr": "10.88.0.0/24", "gateway": "10.88.0.1"}),
    ):
        code, answer = platform.call(method, path, body)
        assert code in (200, 201), (path, answer)
    for i in range(4):  # records only: no agent runs there, nothing connects to them
        host = {"name": f"s{i}", "address": f"192.0.2.{i + 1}", "cpu": 10, "mem": 2560}
        code, answer = platform.call("POST", "/hosts", {**host, "networks": [NETWORK]})
        assert code == 201, answer


def test_each_copy_is_its_own_worker_and_the_launches_spread(platform):
    platform.start(scale="worker=3,orquestrator=2,beat=2")
    host = socket.gethostname()
    expected = {f"pipeline-{i}@{host}" for i in (1, 2, 3)} | {
        f"orquestrator-{i}@{host}" for i in (1, 2)
    }
    wait_until(
        lambda: flower_workers(platform) == expected,
        lambda: (
            f"Flower to list {sorted(expected)}, not {sorted(flower_workers(platform))}: "
            + platform.log()
        ),
        timeout=120,
        interval=1,
    )
    register(platform)
    ids = []
    for i in range(LAUNCHES):
        code, body = platform.call("POST", "/services/scale/1.0", {"label": f"n{i}"})
        assert code == 202, body
        ids.append(body["id"])

    def statuses() -> dict[str, str]:
        return {i: platform.call("GET", f"/instances/{i}")[1]["status"] for i in ids}

    wait_until(
        lambda: set(statuses().values()) <= {"running", "failed"},
        lambda: f"every launch to settle: {statuses()}",
        timeout=240,
        interval=1,
    )
    assert set(statuses().values()) == {"running"}, statuses()

    # which copy ran each step: Flower's task list (the workers send task events)
    ran_on: dict[str, set[str]] = {}
    for name in ("pipeline.prepare", "pipeline.submit", "pipeline.queue", "pipeline.schedule"):
        for task in flower(platform, f"/api/tasks?taskname={name}&limit=1000").values():
            if any(i in (task.get("args") or "") for i in ids):
                ran_on.setdefault(name, set()).add(task["worker"])
    pipeline_workers = set().union(*ran_on.values())
    assert pipeline_workers <= {w for w in expected if w.startswith("pipeline-")}, ran_on
    assert len(pipeline_workers) > 1, ran_on
    runs = flower(platform, "/api/tasks?taskname=pipeline.run&limit=1000").values()
    ours = [t for t in runs if any(i in (t.get("args") or "") for i in ids)]
    assert {t["worker"] for t in ours} <= {w for w in expected if w.startswith("orquestrator-")}
    # the second beat did no harm: both still run (each with a state file of its own), and
    # their sweeps ran on the pipeline workers all along
    assert platform.honcho.poll() is None, platform.log()
    assert {p.name.split(".")[0] for p in platform.data_dir.glob("celerybeat-schedule*")} == {
        "celerybeat-schedule",
        "celerybeat-schedule-2",
    }
    sweeps = [  # Flower hears every deployment on the broker: this one's workers only
        t
        for t in flower(platform, "/api/tasks?taskname=pipeline.sweep&limit=1000").values()
        if t.get("worker") in expected
    ]
    assert sweeps and {t["state"] for t in sweeps} == {"SUCCESS"}, sweeps
    platform.stop()
