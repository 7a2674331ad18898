"""Secrets handed over as files work end to end: the admin token `paas setup` gives the user
admin, and Flower's password, both from ``PAAS_*_FILE``; Flower binds to ``PAAS_FLOWER_HOST``,
not to the web's address."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, base_env, bearer, free_port, wait_until

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def secret_file(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def test_setup_gives_admin_the_token_from_the_file(tmp_path):
    from bigdata_paas import create_app
    from bigdata_paas.settings import TestConfig

    token = "admin-token-from-a-secret-file-" + "y" * 16
    env = base_env(tmp_path / "var", PAAS_AGENT_HOSTS="")
    del env["PAAS_ADMIN_TOKEN"]
    env["PAAS_ADMIN_TOKEN_FILE"] = secret_file(tmp_path, "admin-token", token)
    app = create_app(TestConfig.from_env(env))
    done = app.test_cli_runner().invoke(args=["paas", "setup"])
    assert done.exit_code == 0, done.output
    assert "created the user admin" not in done.output  # the token is the operator's
    client = app.test_client()
    assert client.get("/bigdata/api/v1/instances", headers=bearer(token)).status_code == 200
    assert client.get("/bigdata/api/v1/instances", headers=bearer(token + "x")).status_code == 401
    app.extensions["paas"].db.dispose()


def refused(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) != 0


def flower_status(host: str, port: int, password: str | None) -> int:
    request = urllib.request.Request(f"http://{host}:{port}/api/workers")
    if password is not None:
        request.add_header(
            "Authorization", "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def test_flower_binds_to_its_host_with_the_password_from_the_file(tmp_path):
    password = "flower-password-from-a-file"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PAAS_")},
        **base_env(tmp_path / "var"),
        "PAAS_HOST": "127.0.0.1",
        "PAAS_FLOWER_HOST": "127.0.0.2",  # loopback too, but another address than the web's
        "PAAS_FLOWER_PORT": str(port),
        "PAAS_FLOWER_PASSWORD_FILE": secret_file(tmp_path, "flower-password", password),
    }
    log = (tmp_path / "flower.log").open("wb")
    flower = subprocess.Popen(
        [str(BIN / "celery"), "-A", "workers.celery_app", "flower", "--conf=config/flower.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        wait_until(
            lambda: flower.poll() is not None or not refused("127.0.0.2", port),
            "Flower listening on 127.0.0.2",
            timeout=60,
        )
        assert flower.poll() is None, (tmp_path / "flower.log").read_text()[-3000:]
        assert refused("127.0.0.1", port)
        assert flower_status("127.0.0.2", port, None) == 401
        assert flower_status("127.0.0.2", port, "wrong") == 401
        assert flower_status("127.0.0.2", port, password) == 200
        assert not (tmp_path / "var" / "flower-password").exists()  # none generated
    finally:
        flower.terminate()
        flower.wait(timeout=30)
