"""The paas command's account commands against gunicorn: me, quota, token rotate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.load import call, free_port, start_web, stop_group
from bigdata_paas.operations.users import create_user
from tests.conftest import ADMIN_TOKEN, ROOT, make_app

pytestmark = [pytest.mark.integration]


@pytest.fixture
def server(env, tmp_path):
    """gunicorn on the test's deployment; yields (app, port)."""
    app = make_app(env)
    port = free_port()
    web = start_web(env, port, tmp_path / "web.log", workers=1, threads=4)
    try:
        yield app, port
    finally:
        stop_group(web)
        app.extensions["paas"].db.dispose()


def paas(config_home, *args: str) -> tuple[int, str]:
    """Run ``paas ARGS`` as a user does, its saved settings under ``config_home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAAS_")}
    env.update(PYTHONPATH=str(ROOT), XDG_CONFIG_HOME=str(config_home), COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "-m", "bigdata_paas.client", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def saved_token(config_home) -> str:
    return json.loads((config_home / "paas" / "config.json").read_text())["token"]


def test_me_quota_and_a_rotated_token_saved_where_login_saved_it(server, tmp_path):
    app, port = server
    home = tmp_path / "config"
    url = f"http://127.0.0.1:{port}"
    token = create_user(app.extensions["paas"], "alice", actor="admin")["token"]
    admin = ("--url", url, "--token", ADMIN_TOKEN)

    code, out = paas(home, *admin, "quota", "alice", "--instances", "3", "--cpu", "none")
    assert code == 0, out
    assert "instances" in out and "3" in out
    code, out = paas(home, *admin, "quota", "alice", "-o", "json")
    limits = {r: v["limit"] for r, v in json.loads(out).items()}
    assert limits == {"instances": 3, "nodes": None, "cpu": None, "mem": None, "disks": None}
    assert paas(home, *admin, "quota", "alice", "--mem", "-1")[0] == 2  # a usage error

    assert paas(home, "login", "--url", url, "--token", token)[0] == 0
    code, out = paas(home, "me", "-o", "json")
    assert json.loads(out)["quota"]["instances"] == {"limit": 3, "used": 0}
    code, out = paas(home, "token", "rotate", "--expires-in", "3600", "-o", "json")
    assert code == 0, out
    new = json.loads(out)["token"]
    assert saved_token(home) == new
    assert call(port, "GET", "/users/me", token=token).status == 401
    code, out = paas(home, "me")
    assert code == 0 and out.startswith("alice (user); token expires: 20"), out

    code, out = paas(home, *admin, "token", "rotate", "--user", "alice", "-o", "json")
    assert json.loads(out)["name"] == "alice"
    assert call(port, "GET", "/users/me", token=new).status == 401
    assert saved_token(home) == new  # an admin's rotation of another leaves it
