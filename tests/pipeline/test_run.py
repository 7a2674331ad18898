"""The run step on a real worker: health checks, stop after a failed start, retry."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import free_port, wait_for_status

pytestmark = pytest.mark.integration

API = "/bigdata/api/v1"

TEMPLATE = """{"nodes": {"web0": {"cpu": 1, "mem": 128, "port": {{ opts['port'] }},
  "check_ports": [{{ opts['port'] }}]}}, "services": {"web": {"nodes": ["web0"]}}}"""

#: starts a detached TCP server on the node's check port (or nothing, with listen=False)
SERVING = """
import json, os, signal, subprocess, sys, time
doc = json.load(open(os.environ["PAAS_INSTANCE_FILE"]))
node = doc["nodes"][0]
if sys.argv[1] == "start":
    server = ("import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,"
              "socket.SO_REUSEADDR,1); s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()\\n"
              "while True: s.accept()[0].close()")
    p = subprocess.Popen([sys.executable, "-c", server, node["address"], str(node["port"])],
                         start_new_session=True)
    open("server.pid", "w").write(str(p.pid))
    print("serving", node["address"], node["port"])
elif sys.argv[1] == "stop":
    if os.path.exists("server.pid"):
        os.kill(int(open("server.pid").read()), signal.SIGKILL)
        os.remove("server.pid")
    print("stopped")
"""
SILENT = 'import sys\nprint(sys.argv[1], "and listening to nothing")\n'
FAILING = 'import sys\nprint("cannot", sys.argv[1], file=sys.stderr)\nsys.exit(3)\n'


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def web_service(client, admin):
    """Register `web 1` whose node must answer on a free port, and one host for it."""
    port = free_port()

    def put(part: str, body: str | dict) -> None:
        kwargs = {"json": body} if isinstance(body, dict) else {"data": body}
        response = client.put(f"{API}/services/web/1/{part}", headers=admin, **kwargs)
        assert response.status_code == 200, response.get_json()

    assert (
        client.post(
            f"{API}/services", json={"name": "web", "version": "1"}, headers=admin
        ).status_code
        == 201
    )
    put("template", TEMPLATE)
    put("options", {"required": {"port": port}})
    host = {"name": "h1", "address": "127.0.0.1", "cpu": 4, "mem": 4096}
    assert client.post(f"{API}/hosts", json=host, headers=admin).status_code == 201
    return put, port


def launch(client, admin) -> str:
    response = client.post(f"{API}/services/web/1", json={}, headers=admin)
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def log_lines(client, admin, instance_id: str) -> list[str]:
    body = client.get(f"{API}/instances/{instance_id}/logs", headers=admin).get_json()
    return [f"{line['command']}: {line['line']}" for line in body["lines"]]


def test_running_only_once_ports_answer_and_destroy_closes_them(client, admin, worker, web_service):
    put, port = web_service
    put("orquestrator", SERVING)
    instance_id = launch(client, admin)
    body = wait_for_status(client, admin, instance_id, {"running", "failed"})
    assert body["status"] == "running", (body.get("error"), log_lines(client, admin, body["id"]))
    assert answers(port)
    events = client.get(f"{API}/instances/{instance_id}/events", headers=admin).get_json()
    assert "1 check port(s) answered" in events["events"][-1]["message"]
    client.delete(f"{API}/instances/{instance_id}", headers=admin)
    wait_for_status(client, admin, instance_id, {"destroyed"})
    assert not answers(port)
    assert "stop: stopped" in log_lines(client, admin, instance_id)


def test_silent_start_fails_its_health_check_and_is_stopped(client, admin, worker, web_service):
    put, port = web_service
    put("orquestrator", SILENT)
    instance_id = launch(client, admin)
    body = wait_for_status(client, admin, instance_id, {"running", "failed"})
    assert body["status"] == "failed"
    assert body["error"]["step"] == "run"
    assert "health check failed" in body["error"]["reason"]
    assert f"web0 127.0.0.1:{port}" in body["error"]["reason"]
    assert "stop: stop and listening to nothing" in log_lines(client, admin, instance_id)
    host = client.get(f"{API}/hosts/h1", headers=admin).get_json()
    assert host["allocated"] == {"cpu": 0, "mem": 0, "disks": 0}


def test_retry_runs_a_failed_instance_again_from_its_step(client, admin, worker, web_service):
    put, port = web_service
    put("orquestrator", FAILING)
    instance_id = launch(client, admin)
    body = wait_for_status(client, admin, instance_id, {"running", "failed"})
    assert body["error"]["step"] == "run"
    assert "exited with 3" in body["error"]["reason"]
    # running is not retryable; a failed one is, once
    put("orquestrator", SERVING)
    response = client.post(f"{API}/instances/{instance_id}/retry", headers=admin)
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "submitted"
    body = wait_for_status(client, admin, instance_id, {"running", "failed"})
    assert body["status"] == "running", body
    assert answers(port)
    again = client.post(f"{API}/instances/{instance_id}/retry", headers=admin)
    assert again.status_code == 409
    statuses = [
        e["status"]
        for e in client.get(f"{API}/instances/{instance_id}/events", headers=admin).get_json()[
            "events"
        ]
    ]
    assert statuses[statuses.index("failed") :] == [
        "failed",
        "submitted",
        "queued",
        "scheduled",
        "scheduled",
        "running",
    ]
    client.delete(f"{API}/instances/{instance_id}", headers=admin)
    wait_for_status(client, admin, instance_id, {"destroyed"})
    assert not answers(port)


SLEEPY = 'import sys, time\nif sys.argv[1] == "start":\n    print("napping")\n    time.sleep(10)\n'


@pytest.mark.parametrize("bad", ["0", "abc", "-1", "1.5", "99999999"])
def test_a_bad_service_timeout_is_refused(client, admin, web_service, bad):
    response = client.put(
        f"{API}/services/web/1/orquestrator?timeout={bad}", data=SLEEPY, headers=admin
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["details"]["problems"][0]["field"] == "timeout"
    detail = client.get(f"{API}/services/web/1", headers=admin).get_json()
    assert detail["orquestrator"] is False


def test_the_service_timeout_overrides_the_platform_one(client, admin, worker, web_service):
    # the platform allows 20 s (tests/conftest.py); this service allows 2 s for a 10 s nap
    response = client.put(
        f"{API}/services/web/1/orquestrator?timeout=2", data=SLEEPY, headers=admin
    )
    assert response.status_code == 200
    assert response.get_json()["orquestrator_timeout"] == 2
    instance_id = launch(client, admin)
    body = wait_for_status(client, admin, instance_id, {"running", "failed"})
    assert body["status"] == "failed"
    assert "exceeded its time limit" in body["error"]["reason"]
    assert "start: napping" in log_lines(client, admin, instance_id)
