"""What an agent does for its host: start, stop and list nodes through a driver, and report."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celery import Celery

from bigdata_paas.errors import Unavailable
from bigdata_paas.messaging.publish import publish
from bigdata_paas.nodes import (
    NodeDriver,
    NodeNetworkError,
    NodeOptionError,
    NodeRuntimeError,
    NodeStartError,
    node_spec,
)
from bigdata_paas.settings import Config

log = logging.getLogger(__name__)

#: what a driver may raise for one node; the node fails, the agent goes on
NODE_ERRORS = (NodeStartError, NodeOptionError, NodeNetworkError, NodeRuntimeError, OSError)


class Agent:
    """The agent of ``host``: its driver, where its nodes' state lives, how it reports."""

    def __init__(self, config: Config, host: str, driver: NodeDriver, celery: Celery) -> None:
        self.config, self.host, self.driver, self.celery = config, host, driver, celery
        self.started_at = time.time()

    @property
    def root(self) -> Path:
        """This host's folder on this machine: node state and the host's disk directories."""
        return self.config.agents_path / self.host

    @property
    def disk_root(self) -> Path | None:
        """Where the host's disk origins are: None for the real mounts, else this host's own
        directory (several hosts played by one machine)."""
        return None if self.config.AGENT_DISKS == "mounted" else self.root / "disks"

    def _origins(self, placed: Mapping[str, Any], create: bool) -> list[str]:
        """The node's disk origins as this host sees them (simulated ones made on the way)."""
        origins = []
        for disk in placed.get("disks") or []:
            if isinstance(disk, dict) and isinstance(disk.get("origin"), str):
                origin = Path(disk["origin"])
                if self.disk_root is not None:
                    origin = self.disk_root / str(origin).lstrip("/")
                    if create:
                        origin.mkdir(parents=True, exist_ok=True)
                        origin.chmod(0o755)
                origins.append(str(origin))
        return origins

    def report(self, task: str, *args: Any) -> None:
        """Publish ``task(*args)`` to the pipeline queue; a broker that is down loses it
        (the next heartbeat carries the truth again)."""
        sig = self.celery.signature(
            task, args=args, queue=self.config.queue("pipeline"), immutable=True
        )
        try:
            publish(self.celery, sig)
        except Unavailable:
            log.warning("agent %s: could not publish %s", self.host, task)

    def report_node(self, instance_id: str, name: str, status: str, detail: dict) -> None:
        """Tell the pipeline what became of one node here."""
        self.report("pipeline.node_report", self.host, instance_id, name, status, detail)

    def start(self, instance_id: str, placed: Mapping[str, Any], networks: Mapping) -> str:
        """Start one placed node (idempotent: a running one is found, not doubled)."""
        name = str(placed.get("name"))
        try:
            if placed.get("host") != self.host:
                raise NodeOptionError("host", f"placed on {placed.get('host')}, not {self.host}")
            self._origins(placed, create=True)
            spec = node_spec(
                placed,
                instance_id,
                networks,
                image_allow=self.config.IMAGE_ALLOW or None,
                disk_root=self.disk_root,
                labels={"paas.host": self.host},
            )
            for iface in spec.interfaces:
                self.driver.ensure_network(iface.network, iface.cidr, iface.gateway, iface.bridge)
            handle = self.driver.start(spec)
        except NODE_ERRORS as exc:
            log.warning("agent %s: node %s of %s failed: %s", self.host, name, instance_id, exc)
            self.report_node(
                instance_id, name, "failed", {"driver": self.driver.name, "error": str(exc)[:2000]}
            )
            return "failed"
        self.report_node(
            instance_id,
            name,
            "running",
            {
                "driver": handle.driver,
                "runtime_id": handle.runtime_id,
                "name": handle.name,
                "addresses": dict(handle.addresses),
            },
        )
        return "running"

    def stop(self, instance_id: str, placed: Mapping[str, Any]) -> str:
        """Stop and remove one node and its disk directories; a node already gone is fine."""
        name = str(placed.get("name"))
        try:
            self.driver.stop(instance_id, name)
            self.driver.remove_instance_dirs(instance_id, self._origins(placed, create=False))
        except NODE_ERRORS as exc:
            log.warning("agent %s: stopping %s of %s failed: %s", self.host, name, instance_id, exc)
            self.report_node(
                instance_id,
                name,
                "failed",
                {"driver": self.driver.name, "error": f"stop: {exc}"[:2000]},
            )
            return "failed"
        self.report_node(instance_id, name, "stopped", {})
        return "stopped"

    def heartbeat(self) -> None:
        """Tell the pipeline this host is alive and which nodes run here (reconcile)."""
        try:
            nodes = [
                {
                    "instance": n.instance_id,
                    "node": n.node,
                    "state": n.state,
                    "runtime_id": n.runtime_id,
                }
                for n in self.driver.list(host=self.host)
            ]
        except NODE_ERRORS as exc:
            log.warning("agent %s: cannot list nodes: %s", self.host, exc)
            nodes = None  # unknown: the pipeline reconciles nothing this time
        self.report(
            "pipeline.agent_report",
            self.host,
            {
                "driver": self.driver.name,
                "machine": socket.gethostname(),
                "pid": os.getpid(),
                "started_at": datetime.fromtimestamp(self.started_at, UTC).isoformat(),
                "nodes": nodes,
            },
        )
