"""Physical hosts, their disks, and address pools, with the allocations they hold.

Allocations live on the rows they consume, so the database itself refuses a
double allocation: a host's used cpu/mem can never exceed its capacity (CHECK),
a disk row holds at most one node, and an address is unique per network.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bigdata_paas.models.base import Base, iso, utcnow

HOST_STATES = ("up", "drain", "down")


class Host(Base):
    __tablename__ = "hosts"
    __table_args__ = (
        CheckConstraint("cpu_used >= 0 AND cpu_used <= cpu", name="cpu_capacity"),
        CheckConstraint("mem_used >= 0 AND mem_used <= mem", name="mem_capacity"),
        CheckConstraint("state IN ('up', 'drain', 'down')", name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(255))
    cpu: Mapped[int]
    mem: Mapped[int]
    cpu_used: Mapped[int] = mapped_column(default=0)
    mem_used: Mapped[int] = mapped_column(default=0)
    networks: Mapped[list] = mapped_column(default=list)
    labels: Mapped[dict] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(8), default="up")
    # Why the host is in its state, and since when (an admin's drain, a silent agent...).
    state_reason: Mapped[str | None] = mapped_column(String(500))
    state_since: Mapped[datetime | None]
    # The host's agent: when it last reported, and what it said of itself (driver...).
    # A host whose agent never reported is unmanaged: nothing starts its nodes.
    agent_seen_at: Mapped[datetime | None]
    agent: Mapped[dict | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    disks: Mapped[list[HostDisk]] = relationship(
        back_populates="host", cascade="all, delete-orphan", order_by="HostDisk.name"
    )

    def to_dict(self) -> dict:
        free_disks = [d for d in self.disks if d.node_id is None]
        return {
            "name": self.name,
            "address": self.address,
            "cpu": self.cpu,
            "mem": self.mem,
            "disks": [d.to_dict() for d in self.disks],
            "networks": list(self.networks),
            "labels": dict(self.labels),
            "state": self.state,
            "state_reason": self.state_reason,
            "state_since": iso(self.state_since),
            "agent": (
                {**(self.agent or {}), "last_seen": iso(self.agent_seen_at)}
                if self.agent_seen_at is not None
                else None
            ),
            "allocated": {
                "cpu": self.cpu_used,
                "mem": self.mem_used,
                "disks": len(self.disks) - len(free_disks),
            },
            "free": {
                "cpu": self.cpu - self.cpu_used,
                "mem": self.mem - self.mem_used,
                "disks": len(free_disks),
            },
            "created_at": iso(self.created_at),
        }


class HostDisk(Base):
    __tablename__ = "host_disks"
    __table_args__ = (UniqueConstraint("host_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32), default="hdd")
    size: Mapped[int] = mapped_column(Integer, default=0)
    # The allocation: the node holding this disk, or NULL when free.
    node_id: Mapped[int | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="SET NULL"), index=True
    )

    host: Mapped[Host] = relationship(back_populates="disks")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "size": self.size,
            "free": self.node_id is None,
        }


class Network(Base):
    __tablename__ = "networks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway: Mapped[str | None] = mapped_column(String(64))
    bridge: Mapped[str | None] = mapped_column(String(64))
    reserved: Mapped[list] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Address(Base):
    """An address of a network held by one node interface."""

    __tablename__ = "addresses"
    __table_args__ = (UniqueConstraint("network_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id", ondelete="RESTRICT"))
    address: Mapped[str] = mapped_column(String(64))
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    device: Mapped[str] = mapped_column(String(32))
