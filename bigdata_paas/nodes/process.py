"""The process driver: each node's ``command`` as a supervised process group, no containers.

The embedded default where no container runtime exists. What it enforces (docs/nodes.md):
memory as the address-space limit (RLIMIT_AS = the placed mem), processes (RLIMIT_NPROC, when
the node runs as ``nobody``), open files, no core dumps, and the cpu count as a cpu affinity
of ceil(cpu) cores (a share of a core cannot be enforced without cgroups). Addresses are not
added to this host when they are not its own yet (as root, on a device of the platform
network: nodes/addresses.py); a node gets its placed address in PAAS_NODE_ADDRESS and binds to
it itself.

State lives on disk (``state_dir``), so an agent that restarts finds its nodes again: one
JSON record per node with its pid and the pid's start time (from /proc, which defeats pid
reuse). A node runs in its own session; stop signals the whole session.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from bigdata_paas.nodes import addresses
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
from bigdata_paas.nodes.errors import NodeStartError
from bigdata_paas.nodes.procfs import (
    cpu_set,
    limiter,
    proc_start_time,
    proc_stat,
    read_limits,
    session_members,
)
from bigdata_paas.nodes.spec import NodeSpec, container_name, remove_instance_dirs
from bigdata_paas.unprivileged import unprivileged_user

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
SERVE_SCRIPT = Path(__file__).with_name("serve.py")
#: seconds to wait for a SIGKILLed session to vanish
KILL_WAIT = 5.0
#: images whose whole behaviour is serving the node's config: the process driver stands in
#: for them with serve.py (the same answers) when the node has no command
SERVED_IMAGES = ("localhost/paas-node",)


class ProcessDriver:
    """Nodes as process groups of this host, recorded under ``state_dir``.

    ``state_dir`` must be traversable by ``nobody`` when the agent runs as root (each node's
    working directory is below it); records and logs stay readable by the agent only.
    """

    name = "process"

    def __init__(
        self,
        state_dir: str | Path,
        *,
        host: str = "",
        create_origins: bool = False,
        stop_grace: float = 10.0,
        max_processes: int = 4096,
        max_open_files: int = 4096,
        labels: Mapping[str, str] | None = None,
        **_ignored: object,  # options of other drivers (containers_conf...)
    ) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        self.labels = dict(labels or {})
        self.create_origins = create_origins
        self.stop_grace = stop_grace
        self.max_processes = max_processes
        self.max_open_files = max_open_files
        self._children: dict[int, subprocess.Popen] = {}
        for sub in ("records", "logs", "locks", "work"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o711)
        for sub in ("records", "logs", "locks"):
            os.chmod(self.state_dir / sub, 0o700)
        os.chmod(self.state_dir / "work", 0o711)

    # -- records ----------------------------------------------------------------------------

    def _record_path(self, name: str) -> Path:
        return self.state_dir / "records" / f"{name}.json"

    def _read(self, name: str) -> dict | None:
        try:
            return json.loads(self._record_path(name).read_text())
        except (OSError, ValueError):
            return None

    def _write(self, name: str, record: dict) -> None:
        path = self._record_path(name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, sort_keys=True))
        os.replace(tmp, path)

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        # two agent worker processes handling the same node (a redelivery) take turns
        with open(self.state_dir / "locks" / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _reap(self) -> None:
        """Collect the exit of our own children (a node stopped through another driver)."""
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]

    def _alive(self, record: dict) -> bool:
        self._reap()
        return proc_start_time(record["pid"]) == record["start_time"]

    # -- start ------------------------------------------------------------------------------

    def _command(self, spec: NodeSpec, workdir: Path, python: str) -> list[str]:
        if spec.command:
            return list(spec.command)
        if spec.image and spec.image.split(":")[0].split("@")[0] in SERVED_IMAGES:
            target = workdir / "serve.py"
            shutil.copyfile(SERVE_SCRIPT, target)
            os.chmod(target, 0o644)
            return [python, "-I", str(target)]
        raise NodeStartError(
            f"node {spec.name} has no command: the process driver runs a node's command "
            f"(image {spec.image or 'none'} needs the podman driver)",
            reason="no command",
        )

    def _disks(self, spec: NodeSpec, runner: pwd.struct_passwd | None) -> list[dict]:
        disks = []
        for disk in spec.disks:
            source = disk_source(spec, disk, create_origins=self.create_origins)
            os.chmod(spec.instance_dir(disk), 0o711)
            if disk.mode == "rw":
                os.chmod(source, 0o700)
                if runner is not None:
                    os.chown(source, runner.pw_uid, runner.pw_gid)
            else:  # ro: the node may read, never write (it is not the owner)
                os.chmod(source, 0o755)
            disks.append({"destination": disk.destination, "path": str(source), "mode": disk.mode})
        return disks

    def _launch(self, spec: NodeSpec) -> tuple[subprocess.Popen, dict]:
        """Start the node's process, its addresses made the host's first; on a failure, the
        addresses added for it are removed again."""
        attached: list[tuple[str, str]] = []
        try:
            for nic in spec.interfaces:
                if addresses.attach(nic.network, nic.address):
                    attached.append((nic.network, nic.address))
            process, record = self._spawn(spec)
        except BaseException:
            for network, address in attached:
                addresses.detach(network, address)
            raise
        record["attached"] = attached
        return process, record

    def _spawn(self, spec: NodeSpec) -> tuple[subprocess.Popen, dict]:
        runner = unprivileged_user()
        name = spec.container_name
        workdir = self.state_dir / "work" / name
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(mode=0o700)
        if runner is not None:
            os.chown(workdir, runner.pw_uid, runner.pw_gid)
        disks = self._disks(spec, runner)
        node_file = workdir / "node.json"
        document = spec.document() | {"disk_paths": disks}
        node_file.write_text(json.dumps(document, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(node_file, 0o644)
        python = sys.executable if runner is None else "/usr/bin/python3"
        command = self._command(spec, workdir, python)
        env = {
            **spec.options.env_dict(),
            "PATH": SAFE_PATH,
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            **spec.base_env(),
            "PAAS_NODE_FILE": str(node_file),
            "PAAS_NODE_DISKS": json.dumps(disks),
        }
        log_path = self.state_dir / "logs" / f"{name}.log"
        with open(log_path, "ab") as log:
            os.chmod(log_path, 0o600)
            try:
                process = subprocess.Popen(
                    command,
                    cwd=workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    preexec_fn=limiter(
                        spec,
                        cpu_set(spec),
                        self.max_processes,
                        self.max_open_files,
                        runner is not None,
                    ),
                    user=runner.pw_uid if runner else None,
                    group=runner.pw_gid if runner else None,
                    extra_groups=[] if runner else None,
                )
            except (OSError, subprocess.SubprocessError) as exc:  # no program, a failed limit
                text = getattr(exc, "strerror", None) or str(exc)
                raise NodeStartError(
                    f"node {spec.name}: cannot run {command[0]}: {text}", reason=str(exc)
                ) from None
        start_time = proc_start_time(process.pid)
        record = {
            "instance": spec.instance_id,
            "node": spec.name,
            "host": spec.host or self.host,
            "name": name,
            "pid": process.pid,
            "start_time": start_time,
            "digest": spec.digest(),
            "command": command,
            "workdir": str(workdir),
            "log": str(log_path),
            "disks": [
                {"source": d["path"], "destination": d["destination"], "mode": d["mode"]}
                for d in disks
            ],
            "addresses": {i.device: i.address for i in spec.interfaces},
            "cpus": sorted(cpu_set(spec)),
            "labels": {**self.labels, **spec.labels},
        }
        return process, record

    def start(self, spec: NodeSpec) -> NodeHandle:
        """Start the node's process group, or find it running with this spec (idempotent).

        A record whose process has ended, or that ran another spec, is stopped and replaced.
        """
        name = spec.container_name
        with self._locked(name):
            record = self._read(name)
            if record is not None:
                if self._alive(record) and record["digest"] == spec.digest():
                    return self._handle(record, created=False)
                self._stop_record(record)
            try:
                process, record = self._launch(spec)
            except NodeStartError as exc:
                exc.node, exc.instance_id = spec.name, spec.instance_id
                raise
            except OSError as exc:
                raise start_failed(spec, exc) from exc
            self._children[process.pid] = process
            if record["start_time"] is None:
                process.wait()
                tail = self.logs(spec.instance_id, spec.name)
                self._stop_record(record)
                raise NodeStartError(
                    f"node {spec.name} exited at once with code {process.returncode}: "
                    f"{tail.strip()[-1000:] or 'no output'}",
                    reason=tail.strip()[-1000:],
                    node=spec.name,
                    instance_id=spec.instance_id,
                )
            self._write(name, record)
            return self._handle(record, created=True)

    def _handle(self, record: dict, created: bool) -> NodeHandle:
        return NodeHandle(
            instance_id=record["instance"],
            node=record["node"],
            host=record["host"],
            driver=self.name,
            name=record["name"],
            runtime_id=f"{record['pid']}@{record['start_time']}",
            addresses=record["addresses"],
            created=created,
        )

    # -- stop -------------------------------------------------------------------------------

    def _session(self, record: dict, sig: int | None = None) -> list[int]:
        """The live processes of the node's session (signalled with ``sig`` if given).

        The kernel never reuses a pid while it names a live session, so the members of
        session PID are the node's, unless PID itself now is another process: then the
        node's session had ended before, and it has no members.
        """
        sid = record["pid"]
        stat = proc_stat(sid)
        if stat is not None and stat[1] != record["start_time"]:
            return []
        members = session_members(sid)
        if sig is not None:
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
        return members

    def _wait_gone(self, record: dict, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self._session(record) and time.monotonic() < deadline:
            self._reap()  # our own child is a zombie until collected
            time.sleep(0.05)

    def _stop_record(self, record: dict) -> bool:
        was_running = bool(self._session(record, signal.SIGTERM))
        if was_running:
            self._wait_gone(record, self.stop_grace)
            if self._session(record, signal.SIGKILL):
                self._wait_gone(record, KILL_WAIT)
        child = self._children.pop(record["pid"], None)
        if child is not None:
            child.wait()
        for network, address in record.get("attached") or []:
            addresses.detach(network, address)
        shutil.rmtree(record["workdir"], ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            Path(record["log"]).unlink()
        with contextlib.suppress(FileNotFoundError):
            self._record_path(record["name"]).unlink()
        return was_running

    def stop(self, instance_id: str, node: str) -> bool:
        """TERM the node's session, KILL it after ``stop_grace``, forget it. Gone is fine."""
        name = container_name(instance_id, node)
        with self._locked(name):
            record = self._read(name)
            if record is None:
                return False
            self._stop_record(record)
            return True

    # -- list, inspect ----------------------------------------------------------------------

    def _records(self) -> Iterable[dict]:
        for path in sorted((self.state_dir / "records").glob("*.json")):
            record = self._read(path.stem)
            if record is not None:
                yield record

    def list(
        self,
        *,
        instance_id: str | None = None,
        host: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[NodeState]:
        """The nodes recorded here: ``running``, or ``exited`` when their process has ended."""
        self._reap()
        host = host if host is not None else (self.host or None)
        nodes = []
        for record in self._records():
            all_labels = {
                **record.get("labels", {}),
                LABEL_INSTANCE: record["instance"],
                LABEL_NODE: record["node"],
                LABEL_HOST: record["host"],
                LABEL_DIGEST: record["digest"],
            }
            if instance_id is not None and record["instance"] != instance_id:
                continue
            if host and record["host"] != host:
                continue
            if any(all_labels.get(k) != v for k, v in (labels or {}).items()):
                continue
            nodes.append(
                NodeState(
                    instance_id=record["instance"],
                    node=record["node"],
                    host=record["host"],
                    name=record["name"],
                    state="running" if self._alive(record) else "exited",
                    runtime_id=f"{record['pid']}@{record['start_time']}",
                    labels=all_labels,
                )
            )
        return nodes

    def inspect(self, instance_id: str, node: str) -> NodeInfo | None:
        """The node's limits read back from /proc, its disks and its passed addresses."""
        record = self._read(container_name(instance_id, node))
        if record is None:
            return None
        alive = self._alive(record)
        limits: dict[str, int | None] = {}
        cpus = None
        if alive:
            with contextlib.suppress(OSError):
                limits = read_limits(record["pid"])
                cpus = float(len(os.sched_getaffinity(record["pid"])))
        memory = limits.get("as")
        return NodeInfo(
            name=record["name"],
            state="running" if alive else "exited",
            runtime_id=f"{record['pid']}@{record['start_time']}",
            pid=record["pid"] if alive else None,
            cpus=cpus,
            memory_mb=memory // (1024 * 1024) if memory else None,
            mounts=tuple(Mount(d["source"], d["destination"], d["mode"]) for d in record["disks"]),
            addresses=record["addresses"],
            labels={**record.get("labels", {}), LABEL_INSTANCE: record["instance"]},
            limits=limits,
        )

    def logs(self, instance_id: str, node: str, lines: int = 50) -> str:
        """The last lines the node wrote to stdout and stderr."""
        record = self._read(container_name(instance_id, node))
        path = Path(record["log"]) if record else self.state_dir / "logs" / "missing"
        log = self.state_dir / "logs" / f"{container_name(instance_id, node)}.log"
        for candidate in (path, log):
            with contextlib.suppress(OSError):
                return "\n".join(candidate.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def ensure_network(
        self, name: str, cidr: str, gateway: str | None = None, bridge: str | None = None
    ) -> None:
        """Nothing to make: a process binds to its address on the host's own interfaces."""
        return None

    def remove_network(self, name: str) -> bool:
        return False

    def remove_instance_dirs(self, instance_id: str, origins: Iterable[str]) -> builtins.list[Path]:
        """Delete the instance's directory under every disk origin (on destroy)."""
        return remove_instance_dirs(instance_id, origins)
