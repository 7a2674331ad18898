"""``GET /metrics``: every figure read from a database this test filled, checked exactly;
only the metrics token or an admin may read it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from bigdata_paas import states
from bigdata_paas.models import (
    Address,
    Event,
    Host,
    HostDisk,
    Instance,
    Network,
    Node,
    User,
    utcnow,
)
from bigdata_paas.operations import metrics
from tests.api.support import API
from tests.conftest import base_env, bearer, make_app

METRICS = f"{API}/metrics"
METRICS_TOKEN = "metrics-token-" + "m" * 24


@pytest.fixture
def app(data_root):
    app = make_app(base_env(data_root / "var", PAAS_METRICS_TOKEN=METRICS_TOKEN))
    yield app
    app.extensions["paas"].db.dispose()


def fill(app, client, admin) -> object:
    """Hosts h1 (up, agent 12 s ago), h2 (drain), h3 (down); a /29 pool; instances of two
    services in several statuses, with their events; return the moment it was filled."""
    for body in (
        {"name": "mnet", "cidr": "10.9.0.0/29", "gateway": "10.9.0.1"},  # 6 usable - gateway
    ):
        assert client.post(f"{API}/networks", json=body, headers=admin).status_code == 201
    for name, cpu, mem, disks in (("h1", 8, 4096, 3), ("h2", 4, 2048, 1), ("h3", 2, 1024, 0)):
        host = {
            "name": name,
            "address": f"192.0.2.{cpu}",
            "cpu": cpu,
            "mem": mem,
            "disks": [{"name": f"sd{d}", "type": "hdd"} for d in range(disks)],
            "networks": ["mnet"],
        }
        assert client.post(f"{API}/hosts", json=host, headers=admin).status_code == 201
    assert (
        client.patch(f"{API}/hosts/h2", json={"state": "drain"}, headers=admin).status_code == 200
    )
    now = utcnow()
    t0 = now - timedelta(hours=1)
    rt = app.extensions["paas"]
    with rt.db.session() as session:
        admin_id = session.scalar(select(User.id).where(User.name == "admin"))
        session.execute(update(Host).where(Host.name == "h3").values(state="down"))
        session.execute(
            update(Host)
            .where(Host.name == "h1")
            .values(agent_seen_at=now - timedelta(seconds=12), cpu_used=2, mem_used=1024)
        )

        def instance(status, service="svc", version="1.0", **values) -> Instance:
            row = Instance(
                user_id=admin_id,
                service_name=service,
                service_version=version,
                status=status,
                created_at=t0,
                **values,
            )
            session.add(row)
            session.flush()
            session.add(Event(instance_id=row.id, step="launch", status="pending", at=t0))
            return row

        def event(row, step, status, seconds) -> None:
            at = t0 + timedelta(seconds=seconds)
            session.add(Event(instance_id=row.id, step=step, status=status, at=at))

        fast, slow = instance(states.RUNNING), instance(states.RUNNING)
        event(fast, "run", states.RUNNING, 7)
        event(slow, "run", states.RUNNING, 45)
        event(slow, "health", states.DEGRADED, 50)
        event(slow, "health", states.RUNNING, 55)  # back up: not a second launch-to-running
        event(instance(states.FAILED), "schedule", states.FAILED, 3)
        twice = instance(states.FAILED)
        event(twice, "run", states.FAILED, 20)
        event(twice, "retry", states.QUEUED, 30)
        event(twice, "run", states.FAILED, 40)
        instance(states.QUEUED, queued_at=now - timedelta(seconds=100))
        instance(states.QUEUED, queued_at=now - timedelta(seconds=40))
        instance(states.PENDING, service="other", version="2.0")
        # the fast one's node holds 2 cpu, 1024 MiB, one disk and one address on h1
        node = Node(instance_id=fast.id, name="n0", cpu=2, mem=1024)
        node.host_id = session.scalar(select(Host.id).where(Host.name == "h1"))
        session.add(node)
        session.flush()
        session.execute(
            update(HostDisk)
            .where(HostDisk.host_id == node.host_id, HostDisk.name == "sd0")
            .values(node_id=node.id)
        )
        network_id = session.scalar(select(Network.id).where(Network.name == "mnet"))
        session.add(Address(network_id=network_id, address="10.9.0.2", node_id=node.id, device="e"))
        session.commit()
    return now


def samples(text: str) -> dict[tuple, float]:
    """``{(sample name, (label, value), ...): value}`` of a scrape, as Prometheus reads it."""
    return {
        (s.name, *sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


MIB = 1024 * 1024


def test_every_figure_is_what_the_database_holds(app, client, admin):
    fill(app, client, admin)
    response = client.get(METRICS, headers=bearer(METRICS_TOKEN))
    assert response.status_code == 200
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    got = samples(response.get_data(as_text=True))

    def instances(service, version, status):
        return got[
            ("paas_instances", ("service", service), ("status", status), ("version", version))
        ]

    expected_svc = {"running": 2, "failed": 2, "queued": 2}
    for status in states.STATUSES:
        assert instances("svc", "1.0", status) == expected_svc.get(status, 0), status
        assert instances("other", "2.0", status) == (1 if status == "pending" else 0), status
    assert got[("paas_queued_instances",)] == 2
    assert got[("paas_launches_total",)] == 7
    assert {
        step: got[("paas_launch_failures_total", ("step", step))] for step in states.LAUNCH_STEPS
    } == {"prepare": 0, "submit": 0, "queue": 0, "schedule": 1, "run": 2}

    per_host = {
        "paas_host_cpu_cores": {"h1": 8, "h2": 4, "h3": 2},
        "paas_host_cpu_allocated_cores": {"h1": 2, "h2": 0, "h3": 0},
        "paas_host_memory_bytes": {"h1": 4096 * MIB, "h2": 2048 * MIB, "h3": 1024 * MIB},
        "paas_host_memory_allocated_bytes": {"h1": 1024 * MIB, "h2": 0, "h3": 0},
        "paas_host_disks": {"h1": 3, "h2": 1, "h3": 0},
        "paas_host_disks_allocated": {"h1": 1, "h2": 0, "h3": 0},
    }
    for name, hosts in per_host.items():
        for host, value in hosts.items():
            assert got[(name, ("host", host))] == value, (name, host)
    assert {s: got[("paas_hosts", ("state", s))] for s in ("up", "drain", "down")} == {
        "up": 1,
        "drain": 1,
        "down": 1,
    }
    # only the host whose agent reported has an age
    assert [k for k in got if k[0] == "paas_agent_heartbeat_age_seconds"] == [
        ("paas_agent_heartbeat_age_seconds", ("host", "h1"))
    ]
    assert got[("paas_network_addresses", ("network", "mnet"))] == 5
    assert got[("paas_network_addresses_allocated", ("network", "mnet"))] == 1

    # launch to running: 7 s and 45 s (the degraded instance's return does not count again)
    hist = {k[1][1]: v for k, v in got.items() if k[0] == "paas_launch_to_running_seconds_bucket"}
    assert hist["5.0"] == 0 and hist["10.0"] == 1 and hist["30.0"] == 1 and hist["60.0"] == 2
    assert hist["+Inf"] == 2
    assert got[("paas_launch_to_running_seconds_count",)] == 2
    assert got[("paas_launch_to_running_seconds_sum",)] == 52


def test_the_ages_are_counted_from_the_scrape(app, client, admin):
    now = fill(app, client, admin)
    figures = metrics.read(app.extensions["paas"], now=now + timedelta(seconds=5))
    assert figures.oldest_queued_wait == 105  # the older of the two queued
    assert {h.name: h.agent_age for h in figures.hosts} == {"h1": 17, "h2": None, "h3": None}


def test_an_empty_platform_reads_zero(client):
    got = samples(client.get(METRICS, headers=bearer(METRICS_TOKEN)).get_data(as_text=True))
    assert got[("paas_queued_instances",)] == 0
    assert got[("paas_queue_oldest_wait_seconds",)] == 0
    assert got[("paas_launches_total",)] == 0
    assert not [k for k in got if k[0] == "paas_instances"]


def test_only_the_metrics_token_or_an_admin_reads_them(client, admin, make_user):
    assert client.get(METRICS, headers=admin).status_code == 200
    assert client.get(METRICS, headers=bearer(METRICS_TOKEN)).status_code == 200
    for headers in ({}, bearer("nope"), bearer(METRICS_TOKEN + "x"), bearer(METRICS_TOKEN[:-1])):
        refused = client.get(METRICS, headers=headers)
        assert refused.status_code == 401
        assert refused.get_json()["error"]["code"] == "unauthorized"
    refused = client.get(METRICS, headers=make_user())
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "forbidden"
    # the metrics token opens nothing else
    assert client.get(f"{API}/instances", headers=bearer(METRICS_TOKEN)).status_code == 401


def test_without_a_metrics_token_only_admins_read_them(data_root):
    app = make_app(base_env(data_root / "var"))
    try:
        client = app.test_client()
        assert client.get(METRICS, headers=bearer("")).status_code == 401
        assert client.get(METRICS, headers={"Authorization": "Bearer"}).status_code == 401
    finally:
        app.extensions["paas"].db.dispose()
