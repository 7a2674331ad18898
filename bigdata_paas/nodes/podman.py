"""The podman driver: one container per node, through the podman CLI (argument lists only).

Each node is the container ``paas-<instance>-<node>``, labelled with its instance, node, host
and a digest of its spec, with the placed cpu and memory as limits, its disks bind-mounted,
and one interface per platform network at its placed address (docs/nodes.md).
"""

from __future__ import annotations

import builtins
import json
import math
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bigdata_paas.nodes.driver import (
    LABEL_DIGEST,
    LABEL_HOST,
    LABEL_INSTANCE,
    LABEL_NODE,
    Mount,
    NodeHandle,
    NodeInfo,
    NodeState,
    disk_source,
    start_failed,
)
from bigdata_paas.nodes.errors import NodeNetworkError, NodeStartError
from bigdata_paas.nodes.podman_cli import Podman, needs_containers_conf, podman_env, tail
from bigdata_paas.nodes.spec import (
    NodeSpec,
    check_name,
    container_name,
    network_name,
    remove_instance_dirs,
)

__all__ = ["PodmanDriver", "needs_containers_conf", "podman_env"]

#: where a node finds its own configuration inside the container
NODE_FILE = "/etc/paas/node.json"
LOG_MAX_SIZE = "10m"


class PodmanDriver(Podman):
    """Nodes as podman containers on this host.

    ``state_dir`` holds each node's served configuration (mounted read-only at
    ``/etc/paas/node.json``). ``create_origins``: create a disk's origin when it is missing
    (a laptop playing several hosts); otherwise a missing origin is an unmounted disk and the
    start fails. ``stop_grace``: seconds between SIGTERM and SIGKILL on stop. ``labels``: put
    on every container and network this driver makes, and required of every container it
    lists (an agent's ``paas.deployment``, the tests' run label): deployments sharing one
    podman never see, nor reconcile away, each other's nodes. ``scope``: the deployment's
    part of its network names.
    """

    name = "podman"

    def __init__(
        self,
        state_dir: str | Path,
        *,
        host: str = "",
        containers_conf: str | Path | None = None,
        create_origins: bool = False,
        stop_grace: float = 10.0,
        labels: Mapping[str, str] | None = None,
        podman: str = "podman",
        scope: str = "",
        **_ignored: object,  # options of other drivers (max_processes...)
    ) -> None:
        super().__init__(containers_conf=containers_conf, labels=labels, podman=podman, scope=scope)
        self.state_dir = Path(state_dir)
        self.host = host
        self.create_origins = create_origins
        self.stop_grace = stop_grace

    # -- nodes ------------------------------------------------------------------------------

    def _prepare_disks(self, spec: NodeSpec) -> None:
        uid: int | None = None
        gid: int | None = None
        if spec.options.user:
            user, _, group = spec.options.user.partition(":")
            uid, gid = int(user), int(group) if group else -1
        for disk in spec.disks:
            source = disk_source(spec, disk, create_origins=self.create_origins)
            if uid is not None:
                os.chown(source, uid, gid if gid is not None else -1)

    def _config_file(self, spec: NodeSpec) -> Path:
        folder = self.state_dir / spec.container_name
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        path = folder / "node.json"
        # replaced, never rewritten in place: a running node keeps reading a whole file
        tmp = folder / "node.json.tmp"
        tmp.write_text(json.dumps(spec.document(), sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o644)  # read-only to the node, whatever its user
        os.replace(tmp, path)
        return path

    def run_args(self, spec: NodeSpec, config_file: Path) -> list[str]:
        """The ``podman run`` arguments for a node (without ``podman`` itself)."""
        if not spec.image:
            raise NodeStartError(
                f"node {spec.name} names no docker_image: the podman driver runs images",
                node=spec.name,
                instance_id=spec.instance_id,
            )
        labels = {
            **self.labels,
            **spec.labels,
            LABEL_INSTANCE: spec.instance_id,
            LABEL_NODE: spec.name,
            LABEL_HOST: spec.host or self.host,
            LABEL_DIGEST: spec.digest(),
        }
        args = [
            "run",
            "--detach",
            "--pull=never",
            "--name",
            spec.container_name,
            "--hostname",
            spec.name,
            "--cpus",
            f"{float(spec.cpu):g}",
            "--memory",
            f"{spec.mem}m",
            "--memory-swap",  # the placed memory is the limit: no swap on top
            f"{spec.mem}m",
            "--log-opt",
            f"max-size={LOG_MAX_SIZE}",
            "--volume",
            f"{config_file}:{NODE_FILE}:ro",
        ]
        for key, value in sorted(labels.items()):
            args += ["--label", f"{key}={value}"]
        for key, value in {**spec.options.env_dict(), **spec.base_env()}.items():
            args += ["--env", f"{key}={value}"]
        args += ["--env", f"PAAS_NODE_FILE={NODE_FILE}"]
        for disk in spec.disks:
            args += ["--volume", f"{spec.disk_source(disk)}:{disk.destination}:{disk.mode}"]
        for nic in spec.interfaces:
            args += [
                "--network",
                f"{network_name(nic.network, self.scope)}:ip={nic.address},"
                f"interface_name={nic.device}",
            ]
        if not spec.interfaces:
            args += ["--network", "none"]
        opts = spec.options
        if opts.workdir:
            args += ["--workdir", opts.workdir]
        if opts.entrypoint:
            args += ["--entrypoint", opts.entrypoint]
        if opts.user:
            args += ["--user", opts.user]
        if opts.read_only:
            args += ["--read-only"]
        if opts.shm_size:
            args += ["--shm-size", opts.shm_size]
        # '--' ends podman's options: the image and the command are never read as options
        return [*args, "--", spec.image, *spec.command]

    def _handle(self, spec: NodeSpec, runtime_id: str, created: bool) -> NodeHandle:
        return NodeHandle(
            instance_id=spec.instance_id,
            node=spec.name,
            host=spec.host or self.host,
            driver=self.name,
            name=spec.container_name,
            runtime_id=runtime_id,
            addresses={i.device: i.address for i in spec.interfaces},
            created=created,
        )

    def _current(self, spec: NodeSpec) -> dict[str, Any] | None:
        """The node's container if it runs this very spec, else None (removing a stale one)."""
        found = self.container(spec.container_name)
        if found is None:
            return None
        labels = found.get("Config", {}).get("Labels") or {}
        if found.get("State", {}).get("Running") and labels.get(LABEL_DIGEST) == spec.digest():
            return found
        # Stopped, or started from another spec (the node was placed again): the container's
        # limits, mounts and addresses are fixed at creation, so it is made again. Its disks
        # are bind mounts and keep their data.
        self._remove(spec.container_name)
        return None

    def start(self, spec: NodeSpec) -> NodeHandle:
        """Start the node's container, or find it running with this spec (idempotent).

        A container of the same name that is stopped, or that runs another spec, is removed
        and made again. Raises NodeStartError with podman's own error text.
        """
        try:
            self._prepare_disks(spec)
            for attempt in (1, 2):
                # (again after a stale container, whose removal took its config file along)
                args = self.run_args(spec, self._config_file(spec))
                for nic in spec.interfaces:
                    if nic.network not in self.networks_made:
                        self.ensure_network(nic.network, nic.cidr, nic.gateway, nic.bridge)
                # optimistic: the name is taken only on a redelivered or repeated start
                done = self.run(*args)
                if done.returncode == 0:
                    break
                if attempt == 1 and "already in use" in done.stderr:
                    current = self._current(spec)  # removes a stopped or outdated one
                    if current is not None:
                        return self._handle(spec, current["Id"], created=False)
                    continue
                if attempt == 1 and "network not found" in done.stderr:
                    self.networks_made.clear()  # removed behind our back: make it again
                    continue
                self._remove(spec.container_name)
                raise NodeStartError(
                    f"podman could not start node {spec.name}: {tail(done.stderr)}",
                    reason=done.stderr.strip(),
                )
            found = self.container(spec.container_name) or {}
            state = found.get("State", {})
            if not state.get("Running"):
                logs = self.run("logs", "--tail", "20", spec.container_name)
                self._remove(spec.container_name)
                raise NodeStartError(
                    f"node {spec.name} exited at once with code {state.get('ExitCode')}: "
                    f"{tail(logs.stdout + logs.stderr) or 'no output'}",
                    reason=tail(logs.stdout + logs.stderr),
                )
            return self._handle(spec, found.get("Id", ""), created=True)
        except (NodeStartError, NodeNetworkError) as exc:
            exc.node, exc.instance_id = spec.name, spec.instance_id
            if isinstance(exc, NodeNetworkError):
                raise NodeStartError(
                    exc.message, reason=exc.reason, node=spec.name, instance_id=spec.instance_id
                ) from exc
            raise
        except OSError as exc:  # a disk directory that cannot be made
            raise start_failed(spec, exc) from exc

    def _remove(self, name: str) -> bool:
        done = self.run("rm", "--force", "--time", str(math.ceil(self.stop_grace)), name)
        if done.returncode != 0 and self.container(name) is not None:
            raise NodeStartError(f"cannot remove {name}: {tail(done.stderr)}", reason=done.stderr)
        shutil.rmtree(self.state_dir / name, ignore_errors=True)
        return bool(done.stdout.strip())

    def stop(self, instance_id: str, node: str) -> bool:
        """Stop (SIGTERM, then SIGKILL after ``stop_grace``) and remove the node's container."""
        return self._remove(container_name(instance_id, node))

    def list(
        self,
        *,
        instance_id: str | None = None,
        host: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[NodeState]:
        """The nodes on this host, by their labels (running or not): those carrying this
        driver's own labels and ``labels``."""
        filters = [f"label={LABEL_INSTANCE}"]
        filters += [f"label={key}={value}" for key, value in sorted(self.labels.items())]
        if instance_id is not None:
            filters.append(f"label={LABEL_INSTANCE}={instance_id}")
        host = host if host is not None else (self.host or None)
        if host:
            filters.append(f"label={LABEL_HOST}={check_name(host, 'host')}")
        for key, value in (labels or {}).items():
            filters.append(f"label={key}={value}")
        args = ["ps", "--all", "--format", "json"]
        for item in filters:
            args += ["--filter", item]
        done = self.run(*args)
        if done.returncode != 0:
            raise NodeStartError(f"podman ps failed: {tail(done.stderr)}", reason=done.stderr)
        nodes = []
        for row in json.loads(done.stdout or "[]"):
            row_labels = row.get("Labels") or {}
            nodes.append(
                NodeState(
                    instance_id=row_labels.get(LABEL_INSTANCE, ""),
                    node=row_labels.get(LABEL_NODE, ""),
                    host=row_labels.get(LABEL_HOST, ""),
                    name=(row.get("Names") or [""])[0],
                    state=row.get("State", ""),
                    runtime_id=row.get("Id", ""),
                    labels=row_labels,
                )
            )
        return sorted(nodes, key=lambda n: n.name)

    def inspect(self, instance_id: str, node: str) -> NodeInfo | None:
        """Limits, mounts and addresses of the node's container as podman reports them."""
        found = self.container(container_name(instance_id, node))
        if found is None:
            return None
        hc = found.get("HostConfig", {})
        cpus = None
        if hc.get("NanoCpus"):
            cpus = hc["NanoCpus"] / 1e9
        elif hc.get("CpuQuota") and hc.get("CpuPeriod"):
            cpus = hc["CpuQuota"] / hc["CpuPeriod"]
        networks = found.get("NetworkSettings", {}).get("Networks") or {}
        return NodeInfo(
            name=found.get("Name", ""),
            state=found.get("State", {}).get("Status", ""),
            runtime_id=found.get("Id", ""),
            pid=found.get("State", {}).get("Pid") or None,
            cpus=cpus,
            memory_mb=hc["Memory"] // (1024 * 1024) if hc.get("Memory") else None,
            mounts=tuple(
                Mount(m["Source"], m["Destination"], "rw" if m.get("RW") else "ro")
                for m in found.get("Mounts") or []
            ),
            addresses={net: body.get("IPAddress", "") for net, body in networks.items()},
            labels=found.get("Config", {}).get("Labels") or {},
            limits={
                u["Name"].removeprefix("RLIMIT_").lower(): u.get("Hard")
                for u in hc.get("Ulimits") or []
            }
            | {"memory_swap_mb": (hc.get("MemorySwap") or 0) // (1024 * 1024) or None},
        )

    def logs(self, instance_id: str, node: str, lines: int = 50) -> str:
        done = self.run("logs", "--tail", str(lines), container_name(instance_id, node))
        return done.stdout + done.stderr

    def remove_instance_dirs(self, instance_id: str, origins: Iterable[str]) -> builtins.list[Path]:
        """Delete the instance's directory under every disk origin (on destroy)."""
        return remove_instance_dirs(instance_id, origins)
