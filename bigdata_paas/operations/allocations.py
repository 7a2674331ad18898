"""Load the inventory, call the pure placement engine, and commit its answer atomically."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    Table,
    bindparam,
    column,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update
from sqlalchemy.types import TypeEngine

from bigdata_paas.db import changed_rows
from bigdata_paas.models import HOST_STATES, Address, Host, HostDisk, Network, Node
from bigdata_paas.operations.inventory import expand_reserved, lock_placement
from bigdata_paas.operations.wakeups import wake_queue
from bigdata_paas.placement import (
    DiskDemand,
    FreeDisk,
    HostView,
    NetworkView,
    NicDemand,
    NodeDemand,
    NoFit,
    Placement,
    Scheduler,
    feasible,
    place,
)
from bigdata_paas.rendering import node_roles


class AllocationConflict(Exception):
    """Another scheduler took a resource between our read and our write."""


def node_demands(spec: dict) -> list[NodeDemand]:
    """Turn a validated spec's nodes into engine demands."""
    roles = node_roles(spec)
    demands = []
    for name, node in spec["nodes"].items():
        custom = bool(node.get("use_custom_disks"))
        demands.append(
            NodeDemand(
                name=name,
                cpu=node["cpu"],
                mem=node["mem"],
                disks=tuple(
                    DiskDemand(name=d, type=body.get("type"), host_disk=d if custom else None)
                    for d, body in node.get("disks", {}).items()
                ),
                nics=tuple(
                    NicDemand(
                        device=dev,
                        network=nic["networkname"],
                        address=nic.get("address") if nic.get("type") == "static" else None,
                    )
                    for dev, nic in node.get("networks", {}).items()
                ),
                roles=frozenset(roles.get(name, ())),
                pin=node.get("required_node"),
                constraints=tuple(sorted((node.get("constraints") or {}).items())),
            )
        )
    return demands


def load_hosts(session: Session, *, empty: bool = False) -> list[HostView]:
    """The inventory as the engine sees it (``empty``: as if nothing were allocated)."""
    # Two plain column queries, no ORM objects: the views are built straight from rows (a
    # 1,000-host inventory is 16,000 disks), and rows are never stale after this
    # transaction's own bulk UPDATEs, as identity-mapped hosts would be.
    hosts = session.execute(
        select(
            Host.id,
            Host.name,
            Host.cpu,
            Host.mem,
            Host.cpu_used,
            Host.mem_used,
            Host.networks,
            Host.labels,
            Host.state,
        ).order_by(Host.id)
    ).all()
    free: dict[int, list[FreeDisk]] = {h.id: [] for h in hosts}
    total: dict[int, int] = dict.fromkeys(free, 0)
    for disk_id, host_id, name, kind, size, node_id in session.execute(
        select(
            HostDisk.id,
            HostDisk.host_id,
            HostDisk.name,
            HostDisk.type,
            HostDisk.size,
            HostDisk.node_id,
        ).order_by(HostDisk.host_id, HostDisk.name)
    ):
        if host_id not in free:  # a host added since the first query is not in this view
            continue
        total[host_id] += 1
        if empty or node_id is None:
            free[host_id].append(FreeDisk(id=disk_id, name=name, type=kind, size=size))
    return [
        HostView(
            id=h.id,
            name=h.name,
            cpu_total=h.cpu,
            mem_total=h.mem,
            cpu_free=h.cpu if empty else h.cpu - h.cpu_used,
            mem_free=h.mem if empty else h.mem - h.mem_used,
            disks=free[h.id],
            networks=frozenset(h.networks),
            labels=dict(h.labels),
            state=h.state,
            disk_total=total[h.id],
        )
        for h in hosts
    ]


def load_networks(session: Session, *, empty: bool = False) -> dict[str, NetworkView]:
    used: dict[int, set[str]] = {}
    if not empty:
        for network_id, address in session.execute(select(Address.network_id, Address.address)):
            used.setdefault(network_id, set()).add(address)
    return {
        net.name: NetworkView(
            name=net.name,
            cidr=net.cidr,
            gateway=net.gateway,
            bridge=net.bridge,
            used=frozenset(used.get(net.id, ())),
            reserved=frozenset(expand_reserved(net)),
        )
        for net in session.scalars(select(Network))
    }


#: PostgreSQL's digest of every column the empty inventory is built from (load_hosts and
#: load_networks with ``empty``): hosts but their usage, disks but who holds them, networks.
_EMPTY_INVENTORY_DIGEST = text(
    """
    SELECT md5(concat_ws(';',
      coalesce((SELECT string_agg(row(h.id, h.name, h.cpu, h.mem, h.networks, h.labels,
                                      h.state)::text, ',' ORDER BY h.id) FROM hosts h), ''),
      coalesce((SELECT string_agg(row(d.id, d.host_id, d.name, d.type, d.size)::text, ','
                                  ORDER BY d.id) FROM host_disks d), ''),
      coalesce((SELECT string_agg(n::text, ',' ORDER BY n.id) FROM networks n), '')))
    """
)


class EmptyInventory:
    """The inventory as the feasibility check sees it (every host empty), kept in this process
    between launches with PostgreSQL's digest of the rows it was read from.

    Every submit checks its instance against the whole inventory; reading (and building the
    views of) every host and disk cost more than the rest of the step. Only an operator's
    change to the inventory changes this view, so a launch asks the server for the digest
    (one row) and reads the rows again only when it differs. The views are kept only when the
    digest is the same after reading them as before (nothing changed meanwhile), and are never
    written to (``feasible`` does not; a Scheduler, which does, gets views of its own). SQLite
    has no digest function: there the inventory is read every time.
    """

    def __init__(self) -> None:
        self.kept: tuple[str, list[HostView], dict[str, NetworkView]] | None = None

    def read(self, session: Session) -> tuple[list[HostView], dict[str, NetworkView]]:
        if session.get_bind().dialect.name != "postgresql":
            return load_hosts(session, empty=True), load_networks(session, empty=True)
        digest = session.scalar(_EMPTY_INVENTORY_DIGEST)
        kept = self.kept
        if kept is not None and kept[0] == digest:
            return kept[1], kept[2]
        hosts = load_hosts(session, empty=True)
        networks = load_networks(session, empty=True)
        if session.scalar(_EMPTY_INVENTORY_DIGEST) == digest:
            self.kept = (digest, hosts, networks)  # one assignment: threads see old or new
        return hosts, networks


EMPTY_INVENTORY = EmptyInventory()


def check_feasible(session: Session, spec: dict) -> tuple[list[str], int]:
    """Why the instance could never fit the inventory, empty and every host up ([] if it
    could), and the number of hosts it was checked against.

    Drained and down hosts count: they may come back, and the instance then waits queued.
    """
    hosts, networks = EMPTY_INVENTORY.read(session)
    shortages = feasible(
        node_demands(spec),
        hosts,
        networks,
        anti_affinity=spec.get("anti_affinity", "soft"),
        states=HOST_STATES,
    )
    return [s.message for s in shortages], len(hosts)


def compute(session: Session, spec: dict, strategy: str) -> Placement:
    """Place the spec's nodes on the current free capacity; raises NoFit."""
    return place(
        node_demands(spec),
        load_hosts(session),
        load_networks(session),
        strategy=strategy,
        anti_affinity=spec.get("anti_affinity", "soft"),
    )


def scheduler(session: Session, strategy: str) -> Scheduler:
    """A scheduler over the free capacity as committed now: it places instance after instance,
    each on what the ones before it left, without reading the inventory again."""
    return Scheduler(load_hosts(session), load_networks(session), strategy=strategy)


def placed_node(spec_node: dict, name: str, placement, host: Any) -> dict:
    """The node as the orquestrator receives it: spec fields plus host, disks, addresses.

    ``host``: anything with the host's ``name`` and ``address`` (a row or a Host).
    """
    node = {k: v for k, v in spec_node.items() if k not in ("disks", "networks")}
    disks = []
    for disk_name, body in spec_node.get("disks", {}).items():
        hd = placement.disks[disk_name]
        disks.append(
            {
                **body,
                "name": disk_name,
                "host_disk": hd.name,
                "type": hd.type,
                "size": hd.size,
                "origin": f"/data/{hd.name}",
            }
        )
    networks = {}
    for dev, body in spec_node.get("networks", {}).items():
        a = placement.nics[dev]
        networks[dev] = {
            **body,
            "address": a.address,
            "netmask": a.netmask,
            "prefixlen": a.prefixlen,
            "gateway": a.gateway,
            "bridge": a.bridge,
        }
    first = next(iter(networks.values()), None)
    node.update(
        name=name,
        host=host.name,
        host_address=host.address,
        address=first["address"] if first else host.address,
        disks=disks,
        networks=networks,
    )
    return node


def commit_placement(session: Session, instance_id: str, spec: dict, placement: Placement) -> None:
    """Write every allocation of ``placement``; all guarded so a double allocation fails.

    A handful of statements whatever the size: one guarded UPDATE of the hosts (each host's
    nodes' cpu and mem together), one of the disks, one INSERT of the addresses and one UPDATE
    of the nodes; a guard that matches fewer rows than asked raises AllocationConflict.
    """
    nodes = {
        name: (node_id, cpu, mem)
        for node_id, name, cpu, mem in session.execute(
            _NODES_OF_INSTANCE, {"instance_id": instance_id}
        )
    }
    host_ids = list({p.host_id for p in placement.nodes.values()})
    hosts = {h.id: h for h in session.execute(_HOSTS_BY_ID, {"ids": host_ids})}
    net_ids = dict(session.execute(_NETWORK_IDS).all())
    demand: dict[int, list[int]] = {}
    disk_rows: list[dict] = []
    address_rows: list[dict] = []
    node_rows: list[dict] = []
    for name, p in placement.nodes.items():
        node_id, cpu, mem = nodes[name]
        held = demand.setdefault(p.host_id, [0, 0])
        held[0] += cpu
        held[1] += mem
        disk_rows.extend({"id": d.id, "node_id": node_id} for d in p.disks.values())
        address_rows.extend(
            {
                "network_id": net_ids[a.network],
                "node_id": node_id,
                "device": dev,
                "address": str(ipaddress.ip_address(a.address)),
            }
            for dev, a in p.nics.items()
        )
        node_rows.append(
            {
                "id": node_id,
                "host_id": p.host_id,
                "placement": placed_node(spec["nodes"][name], name, p, hosts[p.host_id]),
            }
        )
    host_rows = [{"id": h, "cpu": cpu, "mem": mem} for h, (cpu, mem) in demand.items()]
    if _TAKE_CPU_MEM.run(session, host_rows) != len(host_rows):
        raise AllocationConflict(
            f"cpu/mem on {', '.join(sorted(hosts[h].name for h in demand))} changed"
        )
    if _TAKE_DISKS.run(session, disk_rows) != len(disk_rows):
        raise AllocationConflict("a disk was taken")
    if address_rows:
        try:
            session.execute(insert(Address), address_rows)
        except IntegrityError as exc:
            raise AllocationConflict("an address was taken") from exc
    _PLACE_NODES.run(session, node_rows)
    # Nodes this session already holds (a resize's joining nodes) would show the old values.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Node) and inspect(obj).dict.get("instance_id") == instance_id:
            session.expire(obj, ["host_id", "placement"])


# commit_placement's statements, built once (building and keying them cost about as much as
# running them)
_NODES_OF_INSTANCE = select(Node.id, Node.name, Node.cpu, Node.mem).where(
    Node.instance_id == bindparam("instance_id")
)
_HOSTS_BY_ID = select(Host.id, Host.name, Host.address).where(
    Host.id.in_(bindparam("ids", expanding=True))
)
_NETWORK_IDS = select(Network.name, Network.id)


class _UpdateEach:
    """``UPDATE table SET values(t, v) WHERE where(t, v)`` for each row ``v`` of a list (its
    ``fields``, by name), built once per dialect; ``run`` returns how many rows it changed.

    On PostgreSQL it is one statement joining the rows as one JSON parameter
    (jsonb_to_recordset); elsewhere one executemany. Either way each row's guard is checked
    against the row as it is then, and the count says how many guards held.
    """

    def __init__(
        self,
        model: type,
        fields: dict[str, TypeEngine],
        where: Callable[[Any, Any], tuple[ColumnElement[bool], ...]],
        values: Callable[[Any, Any], dict[str, Any]],
    ) -> None:
        self.table = cast(Table, model.__table__)  # type: ignore[attr-defined]
        self.fields, self.where, self.values = fields, where, values
        self.statements: dict[str, Update] = {}

    def statement(self, dialect: str) -> Update:
        built = self.statements.get(dialect)
        if built is None:  # two threads may both build it: the same statement
            t = self.table.c
            v: Any
            if dialect == "postgresql":
                v = (
                    func.jsonb_to_recordset(bindparam("rows", type_=JSONB))
                    .table_valued(*(column(name, kind) for name, kind in self.fields.items()))
                    .render_derived(name="v", with_types=True)
                    .c
                )
            else:  # bound names must differ from the table's column names
                v = SimpleNamespace(
                    **{name: bindparam(f"b_{name}", type_=k) for name, k in self.fields.items()}
                )
            built = update(self.table).where(*self.where(t, v)).values(self.values(t, v))
            self.statements[dialect] = built
        return built

    def run(self, session: Session, rows: list[dict]) -> int:
        if not rows:
            return 0
        dialect = session.get_bind().dialect.name
        statement = self.statement(dialect)
        if dialect == "postgresql":
            return changed_rows(session, statement, {"rows": rows})
        batch = [{f"b_{name}": value for name, value in row.items()} for row in rows]
        return changed_rows(session, statement, batch)


_TAKE_CPU_MEM = _UpdateEach(
    Host,
    {"id": Integer(), "cpu": Integer(), "mem": Integer()},
    lambda t, v: (
        t.id == v.id,
        t.state == "up",
        t.cpu_used + v.cpu <= t.cpu,
        t.mem_used + v.mem <= t.mem,
    ),
    lambda t, v: {"cpu_used": t.cpu_used + v.cpu, "mem_used": t.mem_used + v.mem},
)
_TAKE_DISKS = _UpdateEach(
    HostDisk,
    {"id": Integer(), "node_id": Integer()},
    lambda t, v: (t.id == v.id, t.node_id.is_(None)),
    lambda t, v: {"node_id": v.node_id},
)
_PLACE_NODES = _UpdateEach(
    Node,
    {"id": Integer(), "host_id": Integer(), "placement": JSON()},
    lambda t, v: (t.id == v.id,),
    lambda t, v: {"host_id": v.host_id, "placement": v.placement},
)


def release(session: Session, instance_id: str, names: Collection[str] | None = None) -> bool:
    """Free every allocation the instance's nodes (those ``names``, when given: nodes that
    leave a resized instance) hold; True if anything was freed.

    Freed capacity wakes the queue once this transaction commits.
    """
    # Under the placement lock, so a queue drain never sees capacity appear mid-pass.
    lock_placement(session)
    which: tuple[ColumnElement[bool], ...] = (Node.instance_id == instance_id,)
    if names is not None:
        which = (*which, Node.name.in_(list(names)))
    nodes = list(session.scalars(select(Node).where(*which, Node.host_id.is_not(None))))
    for node in nodes:
        session.execute(
            update(Host)
            .where(Host.id == node.host_id)
            .values(cpu_used=Host.cpu_used - node.cpu, mem_used=Host.mem_used - node.mem)
            .execution_options(synchronize_session=False)
        )
        node.host_id = None
    ids = list(session.scalars(select(Node.id).where(*which)))
    if ids:
        freed_disks = changed_rows(
            session,
            update(HostDisk)
            .where(HostDisk.node_id.in_(ids))
            .values(node_id=None)
            .execution_options(synchronize_session=False),
        )
        freed_addresses = changed_rows(
            session,
            delete(Address)
            .where(Address.node_id.in_(ids))
            .execution_options(synchronize_session=False),
        )
    else:
        freed_disks = freed_addresses = 0
    freed = bool(nodes or freed_disks or freed_addresses)
    if freed:
        wake_queue(session)
    return freed


__all__ = [
    "AllocationConflict",
    "NoFit",
    "check_feasible",
    "commit_placement",
    "compute",
    "lock_placement",
    "release",
    "scheduler",
]
