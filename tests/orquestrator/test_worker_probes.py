"""Probes run as orquestrators on a real worker (embedded broker).

* a ``start`` that SIGKILLs itself fails the instance at ``run`` with the signal in the reason,
  releases its allocations and leaves the worker able to run the next launch;
* a ``start`` that looks for the platform's secrets (its environment, its parent's and pid 1's,
  the SQLite database) finds none of them, and does not run as root.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ADMIN_TOKEN, wait_for_status
from tests.orquestrator.conftest import API, HOST, launch

pytestmark = pytest.mark.integration

FREE = {"cpu": 0, "mem": 0, "disks": 0}

#: every script answers `stop` quickly, so the stop after a failed start is seen in the logs
STOP = 'import sys\nif sys.argv[1] == "stop":\n    print("stopped")\n    sys.exit(0)\n'
HEALTHY = 'import sys\nprint(sys.argv[1], "done")\n'
SELF_KILL = STOP + 'import os\nprint("about to die")\nos.kill(os.getpid(), 9)\nprint("survived")\n'

#: prints everything it can see of the platform, then exits 0; never prints a traceback
#: (whose source lines would put the probe's own text in the logs)
PROBE = (
    STOP
    + r"""import json, os
print("probe uid", os.getuid(), "euid", os.geteuid(), "gid", os.getgid())
for key, value in sorted(os.environ.items()):
    print("probe env", key + "=" + value)

def dump(path):
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        print("probe read", path, "failed:", type(exc).__name__, exc)
        return
    print("probe read", path, "ok:", len(data), "bytes")
    for item in data.split(b"\0"):
        if item:
            print("probe environ", path, item.decode("utf-8", "replace"))

dump("/proc/self/environ")
dump("/proc/%d/environ" % os.getppid())
dump("/proc/1/environ")
with open(os.environ["PAAS_INSTANCE_FILE"]) as stream:
    database = json.load(stream)["options"]["database_file"]
try:
    with open(database, "rb") as stream:
        head = stream.read(16)
    print("probe database opened:", database, head)
except OSError as exc:
    print("probe database failed:", type(exc).__name__, exc)
print("probe done")
"""
)

DOCUMENTED = {
    "PAAS_INSTANCE_FILE",
    "PAAS_INSTANCE_ID",
    "PAAS_INSTANCE_NAME",
    "PAAS_SERVICE",
    "PAAS_VERSION",
    "PAAS_USER",
    "PAAS_WORKDIR",
}
FORBIDDEN = [
    ADMIN_TOKEN,
    "PAAS_DATABASE_URL",
    "PAAS_BROKER_URL",
    "PAAS_ADMIN_TOKEN",
    "PAAS_FLOWER_PASSWORD",
    "sqlite:",
]


def logs(client, admin, instance_id: str) -> list[tuple[str, str, str]]:
    response = client.get(f"{API}/instances/{instance_id}/logs", headers=admin)
    assert response.status_code == 200, response.get_json()
    return [
        (line["command"], line["stream"], line["line"]) for line in response.get_json()["lines"]
    ]


def allocated(client, admin) -> dict:
    return client.get(f"{API}/hosts/{HOST['name']}", headers=admin).get_json()["allocated"]


def destroy(client, admin, instance_id: str) -> None:
    assert client.delete(f"{API}/instances/{instance_id}", headers=admin).status_code == 202
    wait_for_status(client, admin, instance_id, {"destroyed"})


@pytest.mark.security
def test_a_start_killed_by_sigkill_fails_at_run_and_the_worker_goes_on(client, admin, worker, web):
    web("orquestrator", SELF_KILL)
    instance_id = launch(client, admin)
    body = wait_for_status(client, admin, instance_id, {"running", "failed"})
    lines = logs(client, admin, instance_id)
    assert body["status"] == "failed", (body, lines[-5:])
    assert body["error"]["step"] == "run", body["error"]
    assert "orquestrator start was killed by signal 9" in body["error"]["reason"], body["error"]
    start = [line for command, _stream, line in lines if command == "start"]
    assert "about to die" in start, start
    assert "survived" not in start, start
    assert lines[-1] == ("stop", "stdout", "stopped"), lines[-3:]
    assert allocated(client, admin) == FREE

    # the worker is still healthy: the next launch runs, on the capacity just released
    web("orquestrator", HEALTHY)
    healthy = launch(client, admin)
    body = wait_for_status(client, admin, healthy, {"running", "failed"})
    assert body["status"] == "running", (body, logs(client, admin, healthy))
    assert ("start", "stdout", "start done") in logs(client, admin, healthy)
    assert allocated(client, admin) == {"cpu": 1, "mem": 128, "disks": 0}
    destroy(client, admin, healthy)
    assert allocated(client, admin) == FREE


@pytest.mark.security
def test_an_orquestrator_sees_no_platform_secret(client, admin, worker, web, env):
    database = Path(env["PAAS_DATA_DIR"]) / "paas.sqlite3"
    assert database.is_file(), "the deployment's SQLite database should exist"
    web("options", {"required": {}, "optional": {"database_file": str(database)}})
    web("orquestrator", PROBE)
    instance_id = launch(client, admin)
    body = wait_for_status(client, admin, instance_id, {"running", "failed"})
    lines = logs(client, admin, instance_id)
    assert body["status"] == "running", (body, lines[-10:])
    destroy(client, admin, instance_id)
    assert allocated(client, admin) == FREE
    lines = logs(client, admin, instance_id)  # start's and stop's
    start = [line for command, _stream, line in lines if command == "start"]
    assert start[-1] == "probe done", start[-5:]
    text = "\n".join(line for _command, _stream, line in lines)

    for secret in FORBIDDEN:
        assert secret not in text, f"{secret!r} leaked into the logs:\n{text}"
    seen = set(re.findall(r"PAAS_[A-Z_]+", text))
    assert seen <= DOCUMENTED, f"undocumented variables: {sorted(seen - DOCUMENTED)}"
    env_names = {
        line.split(" ", 2)[2].split("=", 1)[0] for line in start if line.startswith("probe env ")
    }
    assert env_names >= DOCUMENTED, sorted(env_names)
    assert f"probe env PAAS_INSTANCE_ID={instance_id}" in start, start

    uid = next(line for line in start if line.startswith("probe uid "))
    assert uid.split()[2] != "0" and uid.split()[4] != "0", uid

    opened = [line for line in start if line.startswith("probe database ")]
    assert len(opened) == 1, start
    assert opened[0].startswith("probe database failed: PermissionError"), opened[0]
    assert "Permission denied" in opened[0], opened[0]
