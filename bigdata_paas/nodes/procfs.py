"""Process helpers of the process driver: who runs a node, its limits, and /proc readings."""

from __future__ import annotations

import contextlib
import math
import os
import resource
from collections.abc import Callable
from pathlib import Path

from bigdata_paas.nodes.spec import NodeSpec


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of a process, from /proc/PID/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[19])


def proc_start_time(pid: int) -> int | None:
    """The start time of a running (not zombie) process; None if there is none."""
    stat = proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return None
    return stat[1]


def session_members(sid: int) -> list[int]:
    """The pids of the processes of session ``sid`` (the node and whatever it started)."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def read_limits(pid: int) -> dict[str, int | None]:
    """The soft limits of a process from /proc/PID/limits (None = unlimited)."""
    names = {
        "Max address space": "as",
        "Max open files": "nofile",
        "Max processes": "nproc",
        "Max core file size": "core",
    }
    limits: dict[str, int | None] = {}
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        for prefix, key in names.items():
            if line.startswith(prefix):
                soft = line[len(prefix) :].split()[0]
                limits[key] = None if soft == "unlimited" else int(soft)
    return limits


def cpu_set(spec: NodeSpec) -> set[int]:
    """ceil(cpu) of the cores we may use, spread over them by the node's name."""
    available = sorted(os.sched_getaffinity(0))
    count = min(len(available), max(1, math.ceil(spec.cpu)))
    start = sum(spec.container_name.encode()) % len(available)
    return {available[(start + i) % len(available)] for i in range(count)}


def limiter(
    spec: NodeSpec, cpus: set[int], max_processes: int, nofile: int, drop: bool
) -> Callable[[], None]:
    """The preexec function that applies a node's limits in its process, before exec."""
    memory = spec.mem * 1024 * 1024

    def apply() -> None:
        # in the child, after the user switch and before exec
        for what, value in (
            (resource.RLIMIT_AS, memory),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_NOFILE, nofile),
        ):
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(what, (value, value))
        if drop:
            # RLIMIT_NPROC counts the user's processes and root ignores it
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
        os.sched_setaffinity(0, cpus)

    return apply
