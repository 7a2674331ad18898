"""Shared by the example tests: render an example, place it by hand, run its orquestrator."""

from __future__ import annotations

import copy
import functools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bigdata_paas.rendering import (
    instance_context,
    merge_options,
    render_spec,
    validate_options_document,
    validate_spec,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: (name, version, the launch options of the README)
SERVICES = [
    ("gluster", "3.7.11", {"size": 2, "disks": 2}),
    ("cdh", "5.7.2", {"slaves.number": 3}),
    ("cassandra", "3.11", {"nodes": 3}),
]
SERVICE_IDS = [name for name, _version, _launch in SERVICES]


def folder(name: str, version: str) -> Path:
    return EXAMPLES / name / version


def render(name: str, version: str, values: dict | None = None) -> tuple[dict, dict]:
    """(merged options, validated spec) of an example, through the platform's own rendering."""
    merged, spec = _render(name, version, json.dumps(values or {}, sort_keys=True))
    return copy.deepcopy(merged), copy.deepcopy(spec)


@functools.lru_cache(maxsize=64)
def _render(name: str, version: str, values_json: str) -> tuple[dict, dict]:
    values = json.loads(values_json)
    doc = validate_options_document(
        json.loads((folder(name, version) / "options.json").read_text())
    )
    merged = merge_options(doc, values or {})
    context = instance_context(
        merged, instance_id="42", user="admin", service=name, version=version
    )
    source = (folder(name, version) / "service-template.json").read_text()
    return merged, validate_spec(render_spec(source, context), max_nodes=200)


def bindable(address: str, ports: list[int]) -> bool:
    """True if every port can be bound at ``address`` right now (SO_REUSEADDR, as the node
    servers do: only a listener is in the way, not the TIME_WAIT of an earlier test)."""
    for port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def free_addresses(ports_per_node: list[list[int]]) -> list[str]:
    """One distinct loopback address per node where all of its ports are free, in the tests'
    own pools (``tests.conftest.loopback_prefix``): never the demo's or the README's."""
    from tests.conftest import loopback_prefix

    chosen: list[str] = []
    rng = random.Random()
    for ports in ports_per_node:
        for _attempt in range(200):
            address = f"{loopback_prefix()}.{rng.randint(2, 254)}"
            if address not in chosen and bindable(address, ports):
                chosen.append(address)
                break
        else:
            if not chosen and not bindable("127.250.250.250", [0]):
                pytest.skip("127.x.y.z addresses are not local on this machine")
            raise RuntimeError(f"no free loopback address for ports {ports}")
    return chosen


def place(name: str, version: str, values: dict | None = None, instance_id: str = "42") -> dict:
    """The instance file the platform would write: each node on its own free address.

    Nodes look like ``operations.placement.placed_node`` makes them: the spec's fields plus
    ``host``, ``host_address``, ``address`` (the first network's), ``disks`` as a list with
    their ``origin`` and ``networks`` with their addresses.
    """
    merged, spec = render(name, version, values)
    names = list(spec["nodes"])
    addresses = free_addresses([spec["nodes"][n]["check_ports"] for n in names])
    nodes = []
    for i, (node_name, address) in enumerate(zip(names, addresses, strict=True)):
        body = spec["nodes"][node_name]
        host = f"node0{i % 4 + 1}"
        disks = [
            {
                **disk,
                "name": disk_name,
                "host_disk": f"sd{chr(ord('b') + j)}",
                "type": disk.get("type", "hdd"),
                "size": 2000,
                "origin": f"/data/sd{chr(ord('b') + j)}",
            }
            for j, (disk_name, disk) in enumerate(body["disks"].items())
        ]
        networks = {
            dev: {**nic, "address": address, "netmask": "255.255.0.0", "prefixlen": 16}
            for dev, nic in body["networks"].items()
        }
        others = {k: v for k, v in body.items() if k not in ("disks", "networks")}
        nodes.append(
            {
                **others,
                "name": node_name,
                "host": host,
                "host_address": "127.0.0.1",
                "address": address,
                "disks": disks,
                "networks": networks,
            }
        )
    return {
        "id": instance_id,
        "name": f"{name}-test",
        "service": name,
        "version": version,
        "user": "admin",
        "options": merged,
        "nodes": nodes,
        "services": spec["services"],
    }


class Deployment:
    """One work dir and instance file; runs the example's orquestrator like the platform."""

    def __init__(self, name: str, version: str, workdir: Path, instance: dict | None) -> None:
        self.script = folder(name, version) / "orquestrator.py"
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.instance_file = workdir / "instance.json"
        self.instance = instance
        if instance is not None:
            self.write(instance)

    def write(self, instance) -> None:
        text = instance if isinstance(instance, str) else json.dumps(instance, indent=2)
        self.instance_file.write_text(text)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "PAAS_INSTANCE_FILE": str(self.instance_file),
            "PAAS_WORKDIR": str(self.workdir),
            "PAAS_INSTANCE_ID": "42",
            **extra,
        }

    def run(self, command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-I", str(self.script), command],
            cwd=self.workdir,
            env=self.env() if env is None else env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def pids(self) -> dict[str, int]:
        return server_pids(self.workdir)

    def targets(self) -> list[tuple[dict, int]]:
        return [(node, port) for node in self.instance["nodes"] for port in node["check_ports"]]

    def cleanup(self) -> None:
        kill_servers(self.workdir)


def server_pids(workdir: Path) -> dict[str, int]:
    """{node: pid} of the pid files in a work dir."""
    run = workdir / "run"
    out = {}
    for path in sorted(run.glob("*.pid")) if run.is_dir() else []:
        try:
            out[path.stem] = int(path.read_text().strip())
        except (OSError, ValueError):
            continue
    return out


def serving_processes(workdir: Path) -> list[int]:
    """Pids of every live process serving a node of ``workdir`` (whatever the pid files say)."""
    marker = os.fsencode(str(workdir / "nodes"))
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            args = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[-1].split()[0]
        except OSError:
            continue
        if b"\0serve\0" in args and marker in args and state != b"Z":
            found.append(int(entry))
    return found


def kill_servers(workdir: Path) -> None:
    """Finalizer: SIGKILL every server of ``workdir`` still running."""
    for pid in serving_processes(workdir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while serving_processes(workdir) and time.monotonic() < deadline:
        time.sleep(0.05)


def connect(address: str, port: int, send: bytes = b"", timeout: float = 5.0) -> bytes:
    """Connect, send ``send`` (maybe nothing), read until the server closes."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        if send:
            sock.sendall(send)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def refused(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) != 0


def kill_leftover_servers(data_dir: Path) -> int:
    """Kill every example node server of the deployment rooted at ``data_dir``; how many.

    For a test that leaves an instance running: its node servers (detached on purpose, so
    they outlive ``start``) would outlive the test. As root the platform runs orquestrators in
    a stand-in of ``data_dir/work`` under /var/tmp (``runner.reachable_workdir``): both count.
    """
    from bigdata_paas.orquestrator.runner import reachable_workdir

    work = data_dir / "work"
    roots = {work}
    if os.geteuid() == 0:
        roots.add(reachable_workdir(work / "probe").parent)
    killed = 0
    for root in roots:
        if root.is_dir():
            for instance_dir in root.iterdir():
                pids = serving_processes(instance_dir)
                killed += len(pids)
                if pids:
                    kill_servers(instance_dir)
    return killed
