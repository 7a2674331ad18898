"""Broken orquestrators on a real worker: the instance fails at `run` with the reason, its
output is in the logs, its allocations are released, and the worker runs the next launch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bigdata_paas.orquestrator.runner import TRUNCATED
from tests.conftest import wait_for_status
from tests.orquestrator.conftest import API, HOST, launch

pytestmark = pytest.mark.integration

TIMEOUT = 3
MAX_OUTPUT = 20_000

#: every script answers `stop` quickly, so the stop after a failed start is seen in the logs
STOP = 'import sys\nif sys.argv[1] == "stop":\n    print("stopped")\n    sys.exit(0)\n'

HEALTHY = 'import sys\nprint(sys.argv[1], "done")\n'

SCRIPTS = {
    "timeout": STOP + 'import time\nprint("waiting for ever")\ntime.sleep(60)\nprint("woke up")\n',
    # bounded whatever the limits do: 2,000 forks at most, each child gone after 20 s
    "fork-bomb": STOP
    + """import os, time
children, failed = 0, False
for _ in range(2000):
    try:
        pid = os.fork()
    except OSError as exc:
        if not failed:
            failed = True
            print("fork failed after", children, "children:", type(exc).__name__)
        time.sleep(0.05)
        continue
    if pid == 0:
        time.sleep(20)
        os._exit(0)
    children += 1
time.sleep(20)
""",
    "memory-hog": STOP
    + 'print("allocating")\nhog = bytearray(2 * 1024 ** 3)\nprint("allocated", len(hog))\n',
    "oversized-output": STOP
    + "for i in range(10_000):\n    print('%06d' % i, 'x' * 99)\nsys.exit(5)\n",
    "crash": STOP + 'print("starting")\nraise RuntimeError("boom in " + sys.argv[1])\n',
}

#: what the failure reason must say, per script
REASONS = {
    "timeout": [
        "orquestrator start exceeded its time limit and was killed",
        "last output: waiting for ever",
    ],
    "fork-bomb": ["exceeded its time limit", "children: BlockingIOError"],
    "memory-hog": ["orquestrator start exited with 1", "MemoryError"],
    "oversized-output": ["orquestrator start exited with 5; last output: "],
    "crash": ["orquestrator start exited with 1", "RuntimeError: boom in start"],
}

#: start lines that must be in the logs, per script
LOGGED = {
    "timeout": ["waiting for ever"],
    "fork-bomb": ["children: BlockingIOError"],
    "memory-hog": ["allocating", "MemoryError"],
    "oversized-output": [f"000000 {'x' * 99}", TRUNCATED.format(MAX_OUTPUT)],
    "crash": ["starting", "Traceback (most recent call last):", "RuntimeError: boom in start"],
}

#: start lines that must not be
NOT_LOGGED = {
    "timeout": ["woke up"],
    "fork-bomb": [],
    "memory-hog": [f"allocated {2 * 1024**3}"],
    "oversized-output": [f"009999 {'x' * 99}"],
    "crash": [],
}


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        "PAAS_ORQUESTRATOR_TIMEOUT": str(TIMEOUT),
        "PAAS_ORQUESTRATOR_MAX_OUTPUT": str(MAX_OUTPUT),
    }


def logs(client, admin, instance_id: str) -> list[tuple[str, str, str]]:
    body = client.get(f"{API}/instances/{instance_id}/logs", headers=admin).get_json()
    return [(line["command"], line["stream"], line["line"]) for line in body["lines"]]


def allocated(client, admin) -> dict:
    return client.get(f"{API}/hosts/{HOST['name']}", headers=admin).get_json()["allocated"]


def processes_of(instance_id: str, grace: float = 5.0) -> list[str]:
    """Command lines of live processes that run the instance's orquestrator, after a grace."""
    deadline = time.monotonic() + grace
    while True:
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if instance_id in cmdline and state != "Z":
                found.append(f"{proc.name}: {cmdline}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize("case", list(SCRIPTS))
def test_a_broken_start_fails_cleanly_and_the_worker_goes_on(client, admin, worker, web, case):
    web("orquestrator", SCRIPTS[case])
    instance_id = launch(client, admin)
    body = wait_for_status(client, admin, instance_id, {"running", "failed"})
    lines = logs(client, admin, instance_id)
    assert body["status"] == "failed", (body, lines[-5:])
    assert body["error"]["step"] == "run", body["error"]
    for fragment in REASONS[case]:
        assert fragment in body["error"]["reason"], body["error"]["reason"]

    start = [line for command, _stream, line in lines if command == "start"]
    for line in LOGGED[case]:
        assert any(line in text for text in start), (line, start[-5:])
    for line in NOT_LOGGED[case]:
        assert line not in start
    if case == "oversized-output":
        assert start[-1] == TRUNCATED.format(MAX_OUTPUT)
        assert sum(len(text.encode()) + 1 for text in start[:-1]) <= MAX_OUTPUT
    else:
        assert TRUNCATED.format(MAX_OUTPUT) not in start
    # the stop after a failed start ran, and came after it
    assert lines[-1] == ("stop", "stdout", "stopped"), lines[-3:]

    assert allocated(client, admin) == {"cpu": 0, "mem": 0, "disks": 0}
    assert processes_of(instance_id) == []

    # the worker is still healthy: the next launch runs
    web("orquestrator", HEALTHY)
    healthy = launch(client, admin)
    body = wait_for_status(client, admin, healthy, {"running", "failed"})
    assert body["status"] == "running", (body, logs(client, admin, healthy))
    assert ("start", "stdout", "start done") in logs(client, admin, healthy)
    assert allocated(client, admin) == {"cpu": 1, "mem": 128, "disks": 0}
    client.delete(f"{API}/instances/{healthy}", headers=admin)
    wait_for_status(client, admin, healthy, {"destroyed"})
    assert allocated(client, admin) == {"cpu": 0, "mem": 0, "disks": 0}
