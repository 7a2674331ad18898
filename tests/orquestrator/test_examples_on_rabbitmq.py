"""The three example services, launched together on RabbitMQ + PostgreSQL with a real worker.

Every node of every instance really listens: each of its ``check_ports`` accepts a TCP
connection at the node's address and answers with the node's one-line JSON config. After the
three are destroyed, every port refuses connections and nothing stays allocated.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    Worker,
    load_example_hosts,
    make_app,
    register_example,
    wait_for_status,
)
from tests.examples.helpers import kill_leftover_servers

pytestmark = [pytest.mark.integration, pytest.mark.services]

API = "/bigdata/api/v1"
#: (name, version, launch options): the README's launches, cassandra with its defaults
LAUNCHES = [
    ("gluster", "3.7.11", {"size": 2, "disks": 2}),
    ("cdh", "5.7.2", {"slaves.number": 3}),
    ("cassandra", "3.11", {}),
]
#: node names each launch must produce
EXPECTED_NODES = {
    "gluster": {"gluster0", "gluster1"},
    "cdh": {"master0", "slave0", "slave1", "slave2"},
    "cassandra": {"cassandra0", "cassandra1", "cassandra2"},
}


@pytest.fixture
def stack(services_env, tmp_path) -> Iterator:
    """The app on PostgreSQL + RabbitMQ and one real worker on both queues."""
    app = make_app(services_env)
    worker = None
    try:
        worker = Worker(services_env, tmp_path / "worker.log").start()
        yield app
    finally:
        try:
            if worker is not None:
                worker.stop()
            app.extensions["celery"].close()
            app.extensions["paas"].db.dispose()
        finally:
            # anything still listening (a failed destroy, a failed stop) goes now
            kill_leftover_servers(Path(services_env["PAAS_DATA_DIR"]))


def get(client, admin, path: str) -> dict:
    response = client.get(f"{API}{path}", headers=admin)
    assert response.status_code == 200, (path, response.get_json())
    return response.get_json()


def get_nodes(client, admin, instance_id: str) -> list[dict]:
    return get(client, admin, f"/instances/{instance_id}")["nodes"]


def node_config(address: str, port: int) -> dict:
    """Connect, send one line, read the node's one-line JSON answer until the server closes."""
    with socket.create_connection((address, port), timeout=10) as sock:
        sock.sendall(b"config\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    lines = b"".join(chunks).decode().splitlines()
    assert len(lines) == 1, (address, port, lines)
    return json.loads(lines[0])


def refuses(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) != 0


def test_the_three_examples_run_answer_and_go_away_on_rabbitmq(stack, admin, services_env):
    client = stack.test_client()
    assert stack.extensions["paas"].db.engine.dialect.name == "postgresql"
    for name, version, _options in LAUNCHES:
        register_example(client, admin, name, version)
    load_example_hosts(client, admin)

    ids = {}
    for name, version, options in LAUNCHES:
        response = client.post(f"{API}/services/{name}/{version}", json=options, headers=admin)
        assert response.status_code == 202, response.get_json()
        ids[name] = response.get_json()["id"]

    targets: list[tuple[str, str, int]] = []  # (service, address, port) of every check port
    for name, instance_id in ids.items():
        body = wait_for_status(client, admin, instance_id, {"running", "failed"}, timeout=120)
        logs = get(client, admin, f"/instances/{instance_id}/logs")["lines"]
        assert body["status"] == "running", "\n".join(
            [f"{name}: {body.get('error')}"] + [f"{x['command']} {x['line']}" for x in logs[-20:]]
        )
        nodes = {node["name"]: node for node in body["nodes"]}
        assert set(nodes) == EXPECTED_NODES[name], body["nodes"]
        ports = {node_name: node["check_ports"] for node_name, node in nodes.items()}
        for node_name, node in nodes.items():
            address = node["address"]
            assert address and address.startswith("127."), node
            assert ports[node_name], (name, node_name, "no check_ports")
            for port in ports[node_name]:
                config = node_config(address, port)
                assert config["name"] == node_name, (address, port, config)
                assert config["address"] == address, config
                assert config["instance"] == instance_id, config
                assert config["service"] == name, config
                assert config["host"] == node["host"], config
                assert config["ports"] == ports[node_name], config
                targets.append((name, address, port))
    assert len(targets) == 20, targets  # gluster 2 x 3, cdh 1 x 2 + 3 x 2, cassandra 3 x 2
    # every node has an address of its own, whatever its instance
    addresses = [node["address"] for i in ids.values() for node in get_nodes(client, admin, i)]
    assert len(addresses) == len(set(addresses)) == 9, addresses

    for instance_id in ids.values():
        response = client.delete(f"{API}/instances/{instance_id}", headers=admin)
        assert response.status_code == 202, response.get_json()
    for name, instance_id in ids.items():
        body = wait_for_status(client, admin, instance_id, {"destroyed"}, timeout=60)
        assert body["status"] == "destroyed", (name, body)

    # the servers are gone: allow them a few seconds to close their sockets
    deadline = time.monotonic() + 5
    still_open = targets
    while still_open and time.monotonic() < deadline:
        still_open = [t for t in still_open if not refuses(t[1], t[2])]
        if still_open:
            time.sleep(0.1)
    assert still_open == [], f"still accepting connections after destroy: {still_open}"

    hosts = get(client, admin, "/hosts")["hosts"]
    assert len(hosts) == 4, hosts
    for host in hosts:
        assert host["allocated"] == {"cpu": 0, "mem": 0, "disks": 0}, host
        assert all(disk["free"] for disk in host["disks"]), host
    network = get(client, admin, "/networks/demo")
    assert network["used"] == 0, network
