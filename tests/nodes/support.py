"""Helpers of the node runtime tests: podman calls, local-only connections, placed nodes."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import subprocess
import uuid
from pathlib import Path

from bigdata_paas.nodes import NodeSpec, node_spec
from bigdata_paas.nodes.podman import podman_env
from tests.conftest import wait_until

#: this test run's label value (``paas.test``), on everything the tests make
RUN = uuid.uuid4().hex[:10]


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=podman_env(), check=False
    )


def remove_labelled(label: str) -> None:
    """Remove every container, then every network, carrying ``label`` (key=value)."""
    ids = podman("ps", "--all", "--quiet", "--filter", f"label={label}").stdout.split()
    if ids:
        podman("rm", "--force", "--time", "0", *ids)
    nets = podman("network", "ls", "--quiet", "--filter", f"label={label}").stdout.split()
    if nets:
        podman("network", "rm", "--force", *nets)


def routed_locally(address: str) -> bool:
    out = subprocess.run(["ip", "route", "get", address], capture_output=True, text=True).stdout
    return " via " not in out


def podman_subnets() -> list[ipaddress.IPv4Network]:
    nets = []
    for name in podman("network", "ls", "--format", "{{.Name}}").stdout.split():
        for found in json.loads(podman("network", "inspect", name).stdout or "[]"):
            for subnet in found.get("subnets") or []:
                nets.append(ipaddress.ip_network(subnet["subnet"]))
    return nets


def assert_local(address: str) -> None:
    """Refuse to connect unless ``address`` is on a link of this machine (no gateway)."""
    out = subprocess.run(["ip", "route", "get", address], capture_output=True, text=True).stdout
    assert out and " via " not in out, f"{address} is not on a local link: {out}"


def ask(address: str, port: int, request: bytes = b"hello\n", timeout: float = 5) -> bytes:
    """Connect to a node (after checking its address is local) and read its whole answer."""
    assert_local(address)
    with socket.create_connection((address, port), timeout=timeout) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def node_answer(address: str, port: int, request: bytes = b"hello\n") -> dict:
    """The JSON document a node serves on ``port``, once it answers."""

    def attempt():
        with contextlib.suppress(OSError, ValueError):
            raw = ask(address, port, request)
            body = raw.split(b"\r\n\r\n", 1)[1] if raw.startswith(b"HTTP/") else raw
            return json.loads(body)
        return None

    return wait_until(attempt, f"{address}:{port} to answer", timeout=30)


def placed(
    name: str,
    *,
    cpu: float = 1,
    mem: int = 128,
    image: str | None = None,
    command=None,
    docker_opts: str = "",
    disks: list[tuple[Path, str, str]] = (),
    nics: list[tuple[str, str, str]] = (),
    check_ports: list[int] = (),
    host: str = "h1",
) -> dict:
    """A placed node shaped like operations/placement.py placed_node()."""
    node = {
        "name": name,
        "host": host,
        "cpu": cpu,
        "mem": mem,
        "check_ports": list(check_ports),
        "disks": [
            {"name": f"disk{i}", "origin": str(origin), "destination": dest, "mode": mode}
            for i, (origin, dest, mode) in enumerate(disks)
        ],
        "networks": {
            device: {"networkname": network, "address": address}
            for device, network, address in nics
        },
    }
    if image:
        node["docker_image"] = image
    if command is not None:
        node["command"] = command
    if docker_opts:
        node["docker_opts"] = docker_opts
    return node


def make_spec(instance: str, node: dict, networks: dict | None = None) -> NodeSpec:
    return node_spec(node, instance, networks or {})


def instance_id() -> str:
    return uuid.uuid4().hex
