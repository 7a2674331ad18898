"""commit_placement writes a placement in a few set-wide statements (one JSON parameter on
PostgreSQL, one executemany elsewhere); its guards still refuse, all or nothing, a cpu, a disk
or an address that another placement took meanwhile. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from bigdata_paas.models import Address, Host, HostDisk, Instance, Network, Node, User
from bigdata_paas.operations import allocations
from bigdata_paas.rendering import validate_spec
from tests.conftest import ADMIN_TOKEN, base_env, bearer, make_app

API = "/bigdata/api/v1"

NODES = 6


@pytest.fixture
def rt(each_database, tmp_path):
    app = make_app(base_env(tmp_path / "var", **each_database))
    rt = app.extensions["paas"]
    client, auth = app.test_client(), bearer(ADMIN_TOKEN)
    network = {"name": "net", "cidr": "10.9.0.0/24", "gateway": "10.9.0.1"}
    assert client.post(f"{API}/networks", json=network, headers=auth).status_code == 201
    for i in range(2):
        host = {
            "name": f"h{i}",
            "address": "127.0.0.1",
            "cpu": 4,
            "mem": 4096,
            "disks": [{"name": f"d{j}", "type": "hdd", "size": 10} for j in range(4)],
            "networks": ["net"],
        }
        assert client.post(f"{API}/hosts", json=host, headers=auth).status_code == 201
    yield rt
    rt.db.dispose()


def spec_of(n: int) -> dict:
    nodes = {
        f"n{i}": {
            "cpu": 1,
            "mem": 512,
            "disks": {"data": {"destination": "/data"}},
            "networks": {"eth0": {"networkname": "net"}},
        }
        for i in range(n)
    }
    return validate_spec({"nodes": nodes, "services": {"s": {"nodes": list(nodes)}}}, max_nodes=n)


def stored_instance(rt, spec: dict) -> str:
    with rt.db.session() as session:
        user = session.scalars(select(User)).first()
        assert user is not None
        instance = Instance(
            user_id=user.id,
            service_name="svc",
            service_version="1",
            status="queued",
            spec=spec,
        )
        session.add(instance)
        session.flush()
        session.add_all(
            Node(instance_id=instance.id, name=name, cpu=n["cpu"], mem=n["mem"], spec=n)
            for name, n in spec["nodes"].items()
        )
        session.commit()
        return instance.id


def allocated(rt) -> tuple[list, list, list, list]:
    with rt.db.session() as session:
        return (
            sorted(session.execute(select(Host.name, Host.cpu_used, Host.mem_used)).all()),
            sorted(session.execute(select(HostDisk.id, HostDisk.node_id)).all()),
            sorted(session.execute(select(Address.node_id, Address.address)).all()),
            sorted(session.execute(select(Node.name, Node.host_id, Node.placement)).all()),
        )


def test_a_placement_lands_whole(rt):
    spec = spec_of(NODES)
    instance_id = stored_instance(rt, spec)
    with rt.db.session() as session:
        result = allocations.compute(session, spec, "binpack")
        allocations.commit_placement(session, instance_id, spec, result)
        session.commit()
    hosts, disks, addresses, nodes = allocated(rt)
    per_host: dict[str, int] = {}
    for p in result.nodes.values():
        per_host[p.host] = per_host.get(p.host, 0) + 1
    assert hosts == [(h, per_host.get(h, 0), 512 * per_host.get(h, 0)) for h in ("h0", "h1")]
    assert sum(1 for _, node_id in disks if node_id is not None) == NODES
    assert len(addresses) == NODES
    assert len({a for _, a in addresses}) == NODES
    for name, host_id, placement in nodes:
        assert host_id == result.nodes[name].host_id
        assert placement["host"] == result.nodes[name].host
        assert placement["disks"][0]["host_disk"] == result.nodes[name].disks["data"].name
        assert placement["networks"]["eth0"]["address"] == result.nodes[name].nics["eth0"].address


@pytest.mark.parametrize("taken", ["cpu", "disk", "address"])
def test_a_resource_taken_meanwhile_conflicts_and_nothing_lands(rt, taken):
    spec = spec_of(NODES)
    instance_id = stored_instance(rt, spec)
    with rt.db.session() as session:
        result = allocations.compute(session, spec, "binpack")
        session.commit()
    first = next(iter(result.nodes.values()))
    with rt.db.session() as other:  # another scheduler, committed between read and write
        if taken == "cpu":
            other.execute(update(Host).where(Host.id == first.host_id).values(cpu_used=Host.cpu))
        elif taken == "disk":
            disk = next(iter(first.disks.values()))
            rival = stored_instance(rt, spec_of(1))
            rival_node = other.scalars(select(Node.id).where(Node.instance_id == rival)).one()
            other.execute(update(HostDisk).where(HostDisk.id == disk.id).values(node_id=rival_node))
        else:
            nic = next(iter(first.nics.values()))
            rival = stored_instance(rt, spec_of(1))
            rival_node = other.scalars(select(Node.id).where(Node.instance_id == rival)).one()
            network_id = other.execute(select(Network.id)).scalar_one()
            other.add(
                Address(
                    network_id=network_id, node_id=rival_node, device="eth0", address=nic.address
                )
            )
        other.commit()
    before = allocated(rt)
    with rt.db.session() as session:
        with pytest.raises(allocations.AllocationConflict):
            allocations.commit_placement(session, instance_id, spec, result)
        session.rollback()
    assert allocated(rt) == before
