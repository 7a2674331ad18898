"""PostgreSQL restarted (fast mode) while 200 launches arrive through gunicorn from 4 clients.

The database is a private cluster of the test's own (initdb in a temp dir, its own port). While
it is down every request that needs it is a 503 ``unavailable`` naming the database, with
Retry-After, that created nothing; /health says the database is down. Once it is back, no
request fails on a pooled connection that died with the old server (the engine pings a
connection it checks out whose server closed it), every accepted launch runs exactly once (the
workers retry their steps as transient failures), and nothing is allocated twice.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest
import requests
from sqlalchemy import func, select

from bigdata_paas import states
from bigdata_paas.models import Event, Instance
from tests.conftest import (
    AMQP_URL,
    Worker,
    base_env,
    drop_deployment_queues,
    free_port,
    services_or_skip,
)
from tests.faults.conftest import (
    API,
    SERVICE,
    Deployment,
    Process,
    answers,
    audit_allocations,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.services]

CLIENTS = 4
LAUNCHES = 200
STOP_AFTER = 60  # accepted launches before the database stops
REFUSED_WHILE_DOWN = 8  # refused launches before it starts again
HELD_BACK = 10  # each client's last launches wait until the database is down


@dataclass
class Answer:
    sent: float  # time.monotonic() when the request was sent
    status: int
    body: dict
    retry_after: str | None


class Client(threading.Thread):
    """One client: ``total`` launches one after the other, backing off when told to.

    The last ``HELD_BACK`` wait for ``database_down``, so that however quick a launch is,
    some surely meet the outage.
    """

    def __init__(self, url: str, token: str, total: int, database_down: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.total, self.database_down = url, total, database_down
        self.headers = {"Authorization": f"Bearer {token}"}
        self.answers: list[Answer] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with requests.Session() as session:
                for count in range(self.total):
                    if count == self.total - HELD_BACK:
                        self.database_down.wait(timeout=120)
                    sent = time.monotonic()
                    response = session.post(self.url, json={}, headers=self.headers, timeout=60)
                    self.answers.append(
                        Answer(
                            sent,
                            response.status_code,
                            response.json(),
                            response.headers.get("Retry-After"),
                        )
                    )
                    if response.status_code != 202:
                        time.sleep(0.1)  # a client backs off when told to try again
        except BaseException as exc:  # reported by the test's thread
            self.error = exc


def web(env: dict[str, str], port: int, log_path) -> Process:
    """gunicorn as in production: processes with threads, each with its connection pool."""
    args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
    args += ["--workers", "2", "--threads", "4", "wsgi:app"]
    return Process(args, env, log_path, ready=lambda _p: answers(port))


def runs_per_instance(rt) -> Counter:
    """How many times each instance reached running."""
    with rt.db.session() as session:
        rows = session.execute(
            select(Event.instance_id, func.count(Event.id))
            .where(Event.status == states.RUNNING)
            .group_by(Event.instance_id)
        ).all()
    return Counter(dict(rows))


def instance_ids(rt) -> set[str]:
    with rt.db.session() as session:
        return set(session.scalars(select(Instance.id)))


@pytest.fixture
def env(pg_cluster, data_root):
    """The deployment: the private cluster, queues of its own on the shared RabbitMQ."""
    services_or_skip()
    env = base_env(data_root / "var", PAAS_DATABASE_URL=pg_cluster.url, PAAS_BROKER_URL=AMQP_URL)
    yield env
    drop_deployment_queues(env, pg_cluster.url)


def test_postgresql_restart_during_200_launches_is_503s_then_all_good(pg_cluster, env, tmp_path):
    deployment = Deployment(env, hosts=4)
    worker = Worker(env, tmp_path / "worker.log", concurrency=3).start()
    port = free_port()
    server = web(env, port, tmp_path / "web.log").start()
    base = f"http://127.0.0.1:{port}{API}"
    name, version = SERVICE
    token = env["PAAS_ADMIN_TOKEN"]
    database_down = threading.Event()
    clients = [
        Client(f"{base}/services/{name}/{version}", token, LAUNCHES // CLIENTS, database_down)
        for _ in range(CLIENTS)
    ]
    every = lambda: [a for c in clients for a in c.answers]  # noqa: E731
    try:
        for client in clients:
            client.start()
        wait_until(
            lambda: sum(a.status == 202 for a in every()) >= STOP_AFTER, "launches before the stop"
        )
        pg_cluster.stop("fast")
        down_at = time.monotonic()
        database_down.set()
        # while it is down: /health says so, and a request that needs it is a clear 503
        health = requests.get(f"{base}/health", timeout=30)
        assert health.status_code == 503
        assert health.json() == {
            "status": "degraded",
            "web": "ok",
            "database": "unreachable",
            "broker": "ok",
        }
        listing = requests.get(f"{base}/instances", headers={"Authorization": f"Bearer {token}"})
        assert listing.status_code == 503, listing.text
        assert listing.json()["error"]["code"] == "unavailable"
        wait_until(
            lambda: (
                sum(a.status == 503 and a.sent > down_at for a in every()) >= REFUSED_WHILE_DOWN
            ),
            "launches refused while the database is down",
        )
        # the worker has a backlog: its next step meets the outage and is retried, not failed
        wait_until(
            lambda: (
                "retry: Retry in" in worker.output() and "DatabaseUnavailable" in worker.output()
            ),
            "a pipeline step retried while the database is down",
            timeout=60,
        )
        pg_cluster.start()
        up_at = time.monotonic()
        for client in clients:
            client.join(timeout=300)
            assert not client.is_alive() and client.error is None, client.error
        answers_ = every()
        codes = Counter(a.status for a in answers_)
        accepted = {a.body["id"] for a in answers_ if a.status == 202}

        # no 500: when one comes, the web's traceback says why
        assert set(codes) == {202, 503}, (codes, unhandled(server.output()))
        assert len(answers_) == LAUNCHES and len(accepted) == codes[202]
        for refusal in (a for a in answers_ if a.status == 503):
            assert refusal.body["error"]["code"] == "unavailable", refusal.body
            assert "database" in refusal.body["error"]["message"], refusal.body
            assert refusal.retry_after is not None and refusal.retry_after.isdigit()
        after = [a for a in answers_ if a.sent > up_at]
        assert after and all(a.status == 202 for a in after), Counter(a.status for a in after)
        assert instance_ids(deployment.rt) == accepted  # a 503 created nothing

        wait_until(
            lambda: deployment.statuses()["running"] == len(accepted),
            "every accepted launch to run",
            timeout=300,
            interval=0.5,
        )
        assert deployment.statuses() == Counter({"running": len(accepted)})
        assert runs_per_instance(deployment.rt) == Counter(dict.fromkeys(accepted, 1))
        assert audit_allocations(deployment.rt) == {}
        assert requests.get(f"{base}/health", timeout=30).json()["database"] == "ok"

        # a quiet restart: the pooled connections of the web processes, idle, die with the old
        # server; the first requests after it must still succeed (a checkout is pinged when its
        # socket shows the old server closed it)
        pg_cluster.stop("fast")
        pg_cluster.start()
        auth = {"Authorization": f"Bearer {token}"}
        quiet = [requests.get(f"{base}/instances?per_page=1", headers=auth) for _ in range(16)]
        assert [r.status_code for r in quiet] == [200] * 16, [r.text for r in quiet][:3]
        assert quiet[-1].json()["total"] == len(accepted)
        assert "unhandled error" not in server.output()
        print(
            f"\n{len(accepted)} accepted, {codes[503]} refused (503) while the database was "
            f"down for {up_at - down_at:.1f} s, {len(after)} sent after it was back (all 202)"
        )
    finally:
        for client in clients:
            client.join(timeout=60)
        server.kill()
        worker.stop()
        deployment.close()


def unhandled(output: str) -> str:
    """The traceback of the web's first "unhandled error" (a 500), from its JSON log line (or
    the text that follows it, with PAAS_LOG_FORMAT=text)."""
    for line in output.splitlines():
        if "unhandled error" in line:
            try:
                return json.loads(line).get("exc_info") or line
            except ValueError:
                at = output.find(line)
                return output[at : at + 6000]
    return "no unhandled error logged"
