"""The service, inventory and database checks the placement integration tests share.

The checks read the database directly (SQL on the app's own engine): allocations live on the
rows they consume, so that is where an over-commit or a double allocation would show.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select, text

from bigdata_paas.models import Node
from tests.conftest import wait_until as _wait_until

API = "/bigdata/api/v1"

NAME, VERSION = "slots", "1.0"
NETWORK = "pnet"

#: ``size`` nodes of ``cpu`` cores, ``mem`` MB and ``disks`` disks each, one dynamic address
#: each on ``network``; every node has the role ``slot`` (soft anti-affinity between them)
TEMPLATE = """{% set comma = joiner(",") %}
{
  "nodes": {
{% for n in range(opts['size']) %}{{ comma() }}
    "n{{ n }}": {
      "cpu": {{ opts['cpu'] }},
      "mem": {{ opts['mem'] }},
      "disks": {
{% set dcomma = joiner(",") %}{% for i in range(opts['disks']) %}{{ dcomma() }}
        "disk{{ i }}": {"type": "hdd", "destination": "/data/{{ i }}", "mode": "rw"}
{% endfor %}
      },
      "networks": {"eth0": {"networkname": {{ opts['network']|tojson }}, "type": "dynamic"}},
      "services": ["slot"]
    }
{% endfor %}
  },
  "services": {
{% set ncomma = joiner(", ") %}
    "slot": {"nodes": [{% for n in range(opts['size']) %}{{ ncomma() }}"n{{ n }}"{% endfor %}]}
  }
}
"""

OPTIONS = {
    "required": {"size": 2},
    "optional": {"cpu": 1, "mem": 1024, "disks": 1},
    "advanced": {"network": NETWORK},
    "descriptions": {
        "size": "number of nodes",
        "cpu": "cores per node",
        "mem": "memory per node (MB)",
        "disks": "disks per node",
        "network": "address pool of every node's eth0",
    },
    "limits": {
        "size": {"min": 1, "max": 8},
        "cpu": {"min": 1, "max": 64},
        "mem": {"min": 128, "max": 262144},
        "disks": {"min": 0, "max": 8},
    },
}

ORQUESTRATOR = "import sys; sys.exit(0)\n"

#: statuses an instance passes through on its way to a resting one
MOVING = ("pending", "prepared", "submitted", "scheduled", "destroying")


def register_service(client, headers) -> None:
    """Register the ``slots`` service through the API, part by part, and check it is ready."""
    response = client.post(
        f"{API}/services",
        json={"name": NAME, "version": VERSION, "description": "placement test slots"},
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    for part, body in (
        ("template", TEMPLATE.encode()),
        ("options", json.dumps(OPTIONS).encode()),
        ("orquestrator", ORQUESTRATOR.encode()),
    ):
        response = client.put(
            f"{API}/services/{NAME}/{VERSION}/{part}",
            data=body,
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 200, (part, response.get_json())


def add_inventory(
    client,
    headers,
    *,
    hosts: int,
    cpu: int,
    mem: int,
    disks: int,
    networks: tuple[tuple[str, str, str], ...] = ((NETWORK, "10.77.0.0/24", "10.77.0.1"),),
) -> None:
    """The address pools ``(name, cidr, gateway)`` and ``hosts`` identical hosts on all."""
    for name, cidr, gateway in networks:
        response = client.post(
            f"{API}/networks",
            json={"name": name, "cidr": cidr, "gateway": gateway},
            headers=headers,
        )
        assert response.status_code == 201, response.get_json()
    for i in range(hosts):
        host = {
            "name": f"h{i:02d}",
            "address": f"192.0.2.{i + 1}",
            "cpu": cpu,
            "mem": mem,
            "disks": [{"name": f"sd{chr(ord('b') + d)}", "type": "hdd"} for d in range(disks)],
            "networks": [name for name, _, _ in networks],
        }
        response = client.post(f"{API}/hosts", json=host, headers=headers)
        assert response.status_code == 201, response.get_json()


def launch(client, headers, options: dict | None = None) -> str:
    response = client.post(f"{API}/services/{NAME}/{VERSION}", json=options or {}, headers=headers)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def destroy(client, headers, instance_id: str) -> None:
    response = client.delete(f"{API}/instances/{instance_id}", headers=headers)
    assert response.status_code == 202, response.get_json()


def in_threads(app, count: int, work, threads: int = 5) -> list:
    """Run ``work(client, i)`` for i in range(count) on ``threads`` threads, each with its own
    Flask test client; return the results in order of i."""

    def run(i: int):
        return work(app.test_client(), i)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(run, range(count)))


def get(client, headers, instance_id: str) -> dict:
    response = client.get(f"{API}/instances/{instance_id}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- the database, read directly ---------------------------------------------------------------


def rows(db, sql: str, **params) -> list[tuple]:
    with db.engine.connect() as conn:
        result = [tuple(row) for row in conn.execute(text(sql), params)]
        conn.rollback()
    return result


def statuses(db, ids) -> dict[str, tuple[str, str | None]]:
    """id -> (status, wait_reason) of the given instances."""
    wanted = set(ids)
    return {
        i: (status, reason)
        for i, status, reason in rows(db, "SELECT id, status, wait_reason FROM instances")
        if i in wanted
    }


def queue_order(db, ids) -> list[str]:
    """The queued instances among ``ids``, in submission (queue) order."""
    wanted = set(ids)
    queued = rows(db, "SELECT id FROM instances WHERE status = 'queued' ORDER BY queued_at, id")
    return [i for (i,) in queued if i in wanted]


def scheduling_order(db, ids) -> list[tuple[str, object]]:
    """(instance, time) of every ``schedule -> scheduled`` event among ``ids``, in the order
    the placements were committed (the event ids come from one sequence, under the lock)."""
    wanted = set(ids)
    events = rows(
        db,
        "SELECT instance_id, at FROM events WHERE step = 'schedule' AND status = 'scheduled'"
        " ORDER BY id",
    )
    return [(i, at) for i, at in events if i in wanted]


#: the suite's wait_until with the patience of placement tests (many launches to settle)
wait_until = functools.partial(_wait_until, timeout=120, interval=0.2)


def status_counts(db, ids) -> Counter:
    return Counter(status for status, _ in statuses(db, ids).values())


def inventory_snapshot(db) -> dict[str, list[tuple]]:
    """Every allocation the inventory rows hold: host cpu/mem used, disk holders, addresses."""
    return {
        "hosts": rows(db, "SELECT name, cpu_used, mem_used FROM hosts ORDER BY name"),
        "disks": rows(
            db,
            "SELECT h.name, d.name, d.node_id FROM host_disks d JOIN hosts h ON h.id = d.host_id"
            " ORDER BY h.name, d.name",
        ),
        "addresses": rows(
            db,
            "SELECT network_id, address, node_id, device FROM addresses"
            " ORDER BY network_id, address",
        ),
    }


def assert_no_overcommit(db) -> dict[str, int]:
    """Check every allocation invariant from the database; return the totals held.

    * per host: the cpu/mem of the nodes placed there fit its capacity, and ``cpu_used`` /
      ``mem_used`` equal exactly those sums;
    * every held disk sits on the host of the node holding it, and each node holds as many
      disks as its spec asks (none when unplaced); no host disk appears in two nodes' placements;
    * no address is held twice in a network, and each placed node holds exactly one.
    """
    per_host = rows(
        db,
        "SELECT h.name, h.cpu, h.mem, h.cpu_used, h.mem_used,"
        " COALESCE(SUM(n.cpu), 0), COALESCE(SUM(n.mem), 0), COUNT(n.id)"
        " FROM hosts h LEFT JOIN nodes n ON n.host_id = h.id"
        " GROUP BY h.id, h.name, h.cpu, h.mem, h.cpu_used, h.mem_used ORDER BY h.name",
    )
    for name, cpu, mem, cpu_used, mem_used, node_cpu, node_mem, _ in per_host:
        assert node_cpu <= cpu, f"{name}: nodes hold {node_cpu} cpu of {cpu}"
        assert node_mem <= mem, f"{name}: nodes hold {node_mem} MB of {mem}"
        assert cpu_used == node_cpu, f"{name}: cpu_used {cpu_used} but nodes hold {node_cpu}"
        assert mem_used == node_mem, f"{name}: mem_used {mem_used} but nodes hold {node_mem}"

    misplaced = rows(
        db,
        "SELECT d.id, d.host_id, n.host_id FROM host_disks d JOIN nodes n ON n.id = d.node_id"
        " WHERE n.host_id IS NULL OR n.host_id <> d.host_id",
    )
    assert misplaced == [], f"disks held off their node's host: {misplaced}"
    doubled = rows(
        db,
        "SELECT network_id, address, COUNT(*) FROM addresses"
        " GROUP BY network_id, address HAVING COUNT(*) > 1",
    )
    assert doubled == [], f"addresses held twice: {doubled}"
    held_disks = dict(
        rows(db, "SELECT node_id, COUNT(*) FROM host_disks WHERE node_id IS NOT NULL GROUP BY 1")
    )
    held_addresses = dict(rows(db, "SELECT node_id, COUNT(*) FROM addresses GROUP BY node_id"))

    with db.session() as session:
        nodes = session.execute(
            select(Node.id, Node.instance_id, Node.name, Node.host_id, Node.spec, Node.placement)
        ).all()
        session.rollback()
    placed = [n for n in nodes if n.host_id is not None]
    claimed_disks = Counter()
    claimed_addresses = Counter()
    for node in nodes:
        wanted = len(node.spec.get("disks", {})) if node.host_id is not None else 0
        assert held_disks.get(node.id, 0) == wanted, (node.instance_id, node.name, held_disks)
        wanted = 1 if node.host_id is not None else 0
        assert held_addresses.get(node.id, 0) == wanted, (node.instance_id, node.name)
        if node.host_id is None:
            continue
        for disk in node.placement["disks"]:
            claimed_disks[(node.placement["host"], disk["host_disk"])] += 1
        for nic in node.placement["networks"].values():
            claimed_addresses[(nic["networkname"], nic["address"])] += 1
    assert [k for k, v in claimed_disks.items() if v > 1] == []
    assert [k for k, v in claimed_addresses.items() if v > 1] == []
    return {
        "nodes": len(placed),
        "cpu": sum(r[3] for r in per_host),
        "mem": sum(r[4] for r in per_host),
        "disks": sum(held_disks.values()),
        "addresses": sum(held_addresses.values()),
    }


def assert_nothing_allocated(db) -> None:
    snapshot = inventory_snapshot(db)
    assert snapshot["hosts"], "no hosts in the inventory"
    assert all(cpu == 0 and mem == 0 for _, cpu, mem in snapshot["hosts"]), snapshot["hosts"]
    assert all(node is None for _, _, node in snapshot["disks"]), snapshot["disks"]
    assert snapshot["addresses"] == []
    assert rows(db, "SELECT COUNT(*) FROM nodes WHERE host_id IS NOT NULL") == [(0,)]
