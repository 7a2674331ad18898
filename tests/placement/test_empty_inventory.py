"""The feasibility check keeps the empty inventory between launches (PostgreSQL): it reads the
hosts, disks and networks again exactly when an operator changed one of them, never when only
their usage changed, and answers as a fresh read would. SQLite reads them every time."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from bigdata_paas.models import Host, HostDisk
from bigdata_paas.operations import allocations
from tests.conftest import ADMIN_TOKEN, base_env, bearer, make_app

API = "/bigdata/api/v1"


def spec(cpu: int, network: str | None = None, constraints: dict | None = None) -> dict:
    node: dict = {"cpu": cpu, "mem": 256, "disks": {"d0": {"destination": "/data/0"}}}
    if network:
        node["networks"] = {"eth0": {"networkname": network, "type": "dynamic"}}
    if constraints:
        node["constraints"] = constraints
    return {"nodes": {"a": node}, "services": {"s": {"nodes": ["a"]}}}


def host(name: str, cpu: int, **extra) -> dict:
    disks = [{"name": f"d{j}", "type": "hdd", "size": 10} for j in range(2)]
    return {"name": name, "address": "127.0.0.1", "cpu": cpu, "mem": 4096, "disks": disks, **extra}


@pytest.fixture
def stack(each_database, tmp_path, monkeypatch):
    app = make_app(base_env(tmp_path / "var", **each_database))
    rt = app.extensions["paas"]
    monkeypatch.setattr(allocations, "EMPTY_INVENTORY", allocations.EmptyInventory())
    reads = []
    load_hosts = allocations.load_hosts

    def counted(session, **kwargs):
        reads.append(kwargs)
        return load_hosts(session, **kwargs)

    monkeypatch.setattr(allocations, "load_hosts", counted)
    client, auth = app.test_client(), bearer(ADMIN_TOKEN)
    assert client.post(f"{API}/hosts", json=host("h0", 4), headers=auth).status_code == 201
    yield rt, client, auth, reads
    rt.db.dispose()


def check(rt, wanted: dict) -> list[str]:
    with rt.db.session() as session:
        reasons, hosts = allocations.check_feasible(session, wanted)
        # the same answer as the inventory read afresh
        fresh = allocations.feasible(
            allocations.node_demands(wanted),
            allocations.load_hosts(session, empty=True),
            allocations.load_networks(session, empty=True),
            anti_affinity="soft",
            states=allocations.HOST_STATES,
        )
        assert reasons == [s.message for s in fresh]
        assert hosts == len(allocations.load_hosts(session, empty=True))
        session.commit()
    return reasons


def test_the_empty_inventory_is_read_again_only_when_an_operator_changed_it(stack):
    rt, client, auth, reads = stack
    calls = 0

    def answer(wanted: dict) -> tuple[list[str], int]:
        nonlocal calls
        calls += 1
        reasons = check(rt, wanted)
        return reasons, len(reads) - 2 * calls  # reads by check_feasible alone

    reasons, read = answer(spec(8))
    assert reasons and read == 1
    reasons, read = answer(spec(2))
    assert reasons == []
    kept = not rt.db.is_sqlite  # PostgreSQL keeps the view
    assert read == (1 if kept else 2)

    # usage is not the empty inventory: placing, holding disks, changes nothing here
    with rt.db.session() as session:
        session.execute(update(Host).values(cpu_used=Host.cpu))
        session.execute(update(HostDisk).values(size=HostDisk.size))  # same values, new rows
        session.commit()
    _reasons, read_after_usage = answer(spec(2))
    assert read_after_usage == (1 if kept else 3)

    # an operator's changes: a new host, a drained one, a network, labels
    assert client.post(f"{API}/hosts", json=host("h1", 8), headers=auth).status_code == 201
    reasons, read = answer(spec(8))
    assert reasons == []
    assert read == (2 if kept else 4)

    network = {"name": "net", "cidr": "10.9.0.0/24", "gateway": "10.9.0.1"}
    assert answer(spec(1, network="net"))[0]  # no such network yet
    assert client.post(f"{API}/networks", json=network, headers=auth).status_code == 201
    assert answer(spec(1, network="net"))[0]  # no host is on it
    on_net = host("h2", 2, networks=["net"], labels={"rack": "r1"})
    assert client.post(f"{API}/hosts", json=on_net, headers=auth).status_code == 201
    assert answer(spec(1, network="net"))[0] == []
    assert answer(spec(1, constraints={"rack": "r2"}))[0]
    assert answer(spec(1, constraints={"rack": "r1"}))[0] == []

    patched = client.patch(f"{API}/hosts/h2", json={"state": "drain"}, headers=auth)
    assert patched.status_code == 200, patched.get_json()
    before = len(reads)
    assert answer(spec(1, network="net"))[0] == []  # drained hosts count: they come back
    assert len(reads) - before == 3  # the state changed: read again (and check()'s two)

    assert client.delete(f"{API}/hosts/h2", headers=auth).status_code in (200, 204)
    assert answer(spec(1, network="net"))[0]
