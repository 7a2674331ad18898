"""Instances of a service, their nodes, their event timeline and orquestrator logs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import ForeignKey, Index, Row, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bigdata_paas.models.base import Base, iso, utcnow
from bigdata_paas.names import instance_name


def new_instance_id() -> str:
    return uuid.uuid4().hex


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (
        Index("ix_instances_status_queued_at", "status", "queued_at"),
        # The lists (GET /instances), newest first: each filter walks its index from the end.
        Index("ix_instances_created", "created_at", "id"),
        Index("ix_instances_status_created", "status", "created_at", "id"),
        Index("ix_instances_user_created", "user_id", "created_at", "id"),
        Index(
            "ix_instances_service_created",
            "service_name",
            "service_version",
            "created_at",
            "id",
        ),
        # One launch per (user, Idempotency-Key); rows without a key (NULL) never collide.
        UniqueConstraint("user_id", "idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_instance_id)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Kept (as NULL) when the service is deleted: name and version stay for history.
    service_id: Mapped[int | None] = mapped_column(
        ForeignKey("services.id", ondelete="SET NULL"), index=True
    )
    service_name: Mapped[str] = mapped_column(String(64))
    service_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    options: Mapped[dict] = mapped_column(default=dict)
    merged_options: Mapped[dict | None]
    spec: Mapped[dict | None]
    failed_step: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    wait_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    queued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    # The Celery task id that claimed the run step (see lifecycle.run).
    run_token: Mapped[str | None] = mapped_column(String(64))
    run_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    # Refreshed while an orquestrator command runs; the sweep takes a stale one as lost.
    heartbeat_at: Mapped[datetime | None]
    # The launch's Idempotency-Key header, and a digest of what it launched (service,
    # version, options) to tell a retry from another launch under the same key.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    launch_digest: Mapped[str | None] = mapped_column(String(64))
    # The resize an ``updating`` instance is doing (operations/resize.py): new options and
    # spec, the nodes that join or leave, how far it went; None otherwise.
    resize: Mapped[dict | None]
    # What the instance counts against its owner's quota while it is live (operations/quotas):
    # its nodes, and their cores, memory (MB) and disks, from the spec rendered at launch.
    held_nodes: Mapped[int] = mapped_column(default=0, server_default="0")
    held_cpu: Mapped[int] = mapped_column(default=0, server_default="0")
    held_mem: Mapped[int] = mapped_column(default=0, server_default="0")
    held_disks: Mapped[int] = mapped_column(default=0, server_default="0")

    user = relationship("User")
    nodes: Mapped[list[Node]] = relationship(
        back_populates="instance", cascade="all, delete-orphan", order_by="Node.id"
    )

    @property
    def name(self) -> str:
        return instance_name(self.service_name, self.id)

    def to_dict(self, *, with_nodes: bool = True) -> dict:
        owner = self.user.name if self.user is not None else None
        return instance_dict(self, owner, self.nodes if with_nodes else None)


#: an instance as the bodies read it: the row object, a row of its columns under their names,
#: or (a launch's answer) the values just inserted, as attributes
Columns = Instance | Row | SimpleNamespace


def instance_dict(instance: Columns, owner: str | None, nodes: Iterable[Node] | None) -> dict:
    """What GET /instances/{id} shows of ``instance`` (an Instance, or anything with its
    columns as attributes), owned by ``owner``, with ``nodes`` (None: a listing's line)."""
    body = instance_body(instance, owner)
    if nodes is not None:
        merged, services = rendered(instance)
        body["merged_options"] = merged
        body["nodes"] = [node.to_dict() for node in nodes]
        body["services"] = services
    return body


def rendered(instance: Columns) -> tuple[dict | None, dict]:
    """The merged options and services of ``instance`` once prepared: (None, {}) while it is
    pending (the launch's render is stored by then, but prepare may still render again)."""
    if instance.status == "pending":
        return None, {}
    return instance.merged_options, (instance.spec or {}).get("services", {})


def instance_body(instance: Columns, user: str | None) -> dict:
    """What a listing shows of ``instance`` (an Instance, or a row of its columns under their
    names): without nodes, merged options and services. ``user`` is its owner's name."""
    body = {
        "id": instance.id,
        "name": instance_name(instance.service_name, instance.id),
        "service": instance.service_name,
        "version": instance.service_version,
        "user": user,
        "status": instance.status,
        "options": instance.options,
        "created_at": iso(instance.created_at),
        "updated_at": iso(instance.updated_at),
    }
    if instance.status == "failed":
        body["error"] = {"step": instance.failed_step, "reason": instance.error}
    if instance.status == "queued" and instance.wait_reason:
        body["waiting_for"] = instance.wait_reason
    if instance.status == "updating" and instance.resize:
        resize = instance.resize
        body["resize"] = {k: resize[k] for k in ("action", "added", "removed", "options")}
    return body


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("instance_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    cpu: Mapped[int]
    mem: Mapped[int]
    spec: Mapped[dict] = mapped_column(default=dict)
    # The cpu/mem allocation: set while the node holds cpu and mem on the host.
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    # The placed node as handed to the orquestrator (host, disks, addresses).
    placement: Mapped[dict | None]
    # The node as its host's agent runs it: state (starting, running, failed, stopping,
    # stopped), driver, runtime id and name, error; None until the run step starts it.
    runtime: Mapped[dict | None]

    instance: Mapped[Instance] = relationship(back_populates="nodes")
    host = relationship("Host")

    def to_dict(self) -> dict:
        return node_body(self.name, self.cpu, self.mem, self.spec, self.placement, self.runtime)


def node_body(
    name: str, cpu: int, mem: int, spec: dict, placement: dict | None, runtime: dict | None
) -> dict:
    """A node as GET /instances/{id} shows it, from its columns."""
    placed = placement or {}
    return {
        "name": name,
        "cpu": cpu,
        "mem": mem,
        "host": placed.get("host"),
        "address": placed.get("address"),
        "disks": placed.get("disks")
        or [{"name": disk, **body} for disk, body in spec.get("disks", {}).items()],
        "networks": placed.get("networks") or spec.get("networks", {}),
        "services": spec.get("services", []),
        "check_ports": spec.get("check_ports", []),
        "runtime": runtime,
    }


class Event(Base):
    __tablename__ = "events"
    # Streams resume after an event id: SQLite must never hand out an id again (it would
    # reuse the highest one after a delete without AUTOINCREMENT).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    step: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "instance_id": self.instance_id,
            "at": iso(self.at),
            "step": self.step,
            "status": self.status,
            "message": self.message,
        }


class LogLine(Base):
    __tablename__ = "log_lines"
    __table_args__ = {"sqlite_autoincrement": True}  # as for events: ids are stream cursors

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("instances.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    command: Mapped[str] = mapped_column(String(16))
    stream: Mapped[str] = mapped_column(String(8))
    line: Mapped[str] = mapped_column(Text)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "at": iso(self.at),
            "command": self.command,
            "stream": self.stream,
            "line": self.line,
        }
