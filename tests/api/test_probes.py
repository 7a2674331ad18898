"""The probes: /livez (the process answers) and /readyz (the database and the broker answer in
time, or a 503 naming which did not). No auth, no secrets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

import config
from bigdata_paas import create_app
from tests.api.support import API
from tests.conftest import ADMIN_TOKEN, base_env, free_port

UP = {"status": "ready", "database": "ok", "broker": "ok", "failed": []}


def no_secret_in(response, app) -> None:
    text = response.get_data(as_text=True)
    settings = app.extensions["paas"].config
    for secret in (ADMIN_TOKEN, settings.DATA_DIR, settings.broker_url, settings.database_url):
        assert secret not in text
    for word in ("sqlite", "amqp", "postgresql", "127.0.0.1"):
        assert word not in text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}], ids=["none", "bad"])
def test_both_answer_without_a_token_when_all_is_up(app, client, headers):
    live = client.get(f"{API}/livez", headers=headers)
    assert (live.status_code, live.get_json()) == (200, {"status": "ok"})
    ready = client.get(f"{API}/readyz", headers=headers)
    assert (ready.status_code, ready.get_json()) == (200, UP)
    no_secret_in(ready, app)


def app_with(data_root, **env: str):
    """An app whose settings point where the test says (not migrated: it may not be reachable)."""
    return create_app(config.TestConfig.from_env(base_env(data_root / "var", **env)))


def test_readyz_is_503_naming_the_broker_on_a_closed_port(data_root):
    app = app_with(data_root, PAAS_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    client = app.test_client()
    try:
        ready = client.get(f"{API}/readyz")
        assert ready.status_code == 503
        assert ready.get_json() == {
            "status": "unready",
            "database": "ok",
            "broker": "unreachable",
            "failed": ["broker"],
        }
        no_secret_in(ready, app)
        assert client.get(f"{API}/livez").status_code == 200  # alive all the same
    finally:
        app.extensions["paas"].db.dispose()


def test_readyz_is_503_naming_the_database_on_a_closed_port(data_root):
    port = free_port()
    app = app_with(data_root, PAAS_DATABASE_URL=f"postgresql+psycopg://x@127.0.0.1:{port}/x")
    client = app.test_client()
    try:
        ready = client.get(f"{API}/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["failed"] == ["database"]
        assert ready.get_json()["broker"] == "ok"
        no_secret_in(ready, app)
        assert client.get(f"{API}/livez").status_code == 200
    finally:
        app.extensions["paas"].db.dispose()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A local port that accepts connections and never says a word (a hung broker)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_readyz_gives_up_on_a_broker_that_never_answers(data_root, silent_server):
    app = app_with(
        data_root,
        PAAS_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{silent_server}//",
        PAAS_PROBE_TIMEOUT="0.5",
        PAAS_PUBLISH_TIMEOUT="30",  # the probe's own limit decides, not the broker client's
    )
    try:
        ready = app.test_client().get(f"{API}/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["failed"] == ["broker"]
    finally:
        app.extensions["paas"].db.dispose()
