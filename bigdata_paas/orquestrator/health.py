"""Health checks after ``start``: every node's check_ports must accept a TCP connection."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable


def check_targets(nodes: Iterable[dict]) -> list[tuple[str, str, int]]:
    """(node, address, port) for every check port of the placed nodes."""
    return [
        (node["name"], node.get("address") or node["host_address"], int(port))
        for node in nodes
        for port in node.get("check_ports") or []
    ]


def answers(address: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_ports(
    targets: list[tuple[str, str, int]], timeout: float, interval: float = 0.2
) -> list[tuple[str, str, int]]:
    """Poll until every target answers or ``timeout`` passes; return those that never did."""
    deadline = time.monotonic() + timeout
    waiting = list(targets)
    while waiting:
        waiting = [t for t in waiting if not answers(t[1], t[2])]
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    return waiting


def describe_missing(missing: list[tuple[str, str, int]], timeout: float) -> str:
    ports = ", ".join(f"{node} {address}:{port}" for node, address, port in missing)
    return f"health check failed: did not answer within {timeout:g} s: {ports}"
