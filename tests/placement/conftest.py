"""Fixtures of the placement integration tests, wrapping the suite-wide ones of tests/conftest.py.

* ``env`` and ``services_env`` move the data directory below a 0711 temp dir: orquestrators run
  as ``nobody`` when the worker runs as root and must reach their work dirs (pytest's own temp
  root is 0700); ``make_app()`` migrates before the data dir exists, so it is created up front.
* ``sqlite_stack`` and ``pg_stack`` yield the app and a starter of real ``celery worker``
  processes; at teardown every worker is stopped and what is left of its process group killed,
  and ``pg_stack`` then deletes this test's queues from RabbitMQ.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Worker, make_app

QUEUES = ("pipeline", "orquestrator")


def stop_worker(worker: Worker) -> None:
    """Stop the worker, then kill whatever is left in its process group."""
    try:
        if worker.process is not None:
            worker.stop()
    finally:
        if worker.process is not None:
            try:
                os.killpg(worker.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Workers:
    """Real worker processes started by one test; ``stop_all`` stops every one of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Worker] = []

    def start(
        self, env: dict[str, str], queues: tuple[str, ...] = QUEUES, concurrency: int = 2
    ) -> Worker:
        log_path = self.log_dir / f"worker{len(self.started)}.log"
        worker = Worker(env, log_path, concurrency=concurrency, queues=queues)
        self.started.append(worker)
        return worker.start()

    def stop_all(self) -> None:
        while self.started:
            stop_worker(self.started.pop())


@pytest.fixture
def sqlite_stack(env, tmp_path) -> Iterator[tuple]:
    """The app on the embedded defaults (SQLite, filesystem broker) and a worker starter."""
    app = make_app(env)
    workers = Workers(tmp_path)
    try:
        yield app, workers.start
    finally:
        workers.stop_all()
        app.extensions["celery"].close()
        app.extensions["paas"].db.dispose()


@pytest.fixture
def pg_stack(services_env, tmp_path) -> Iterator[tuple]:
    """The app on PostgreSQL + RabbitMQ and a worker starter; workers stopped afterwards
    (services_env deletes the queues)."""
    app = make_app(services_env)
    workers = Workers(tmp_path)
    try:
        yield app, workers.start
    finally:
        workers.stop_all()
        app.extensions["celery"].close()
        app.extensions["paas"].db.dispose()
