"""The platform's Containerfile builds with podman and its image runs the platform: the operator
commands, and the web process answering with the admin from `paas-server setup`.

No registry and no index: the base is a local Python image and the wheels of requirements.lock
come from a wheelhouse (tests/integration/container_base.py). The base and the locked
dependencies (the Containerfile's ``deps`` stage) are kept between runs; the platform image and
its containers are removed.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator

import pytest

from bigdata_paas.nodes.driver import podman_works
from tests.conftest import ADMIN_TOKEN, REQUIRE_SERVICES, ROOT, wait_until
from tests.integration.container_base import (
    ensure_base_image,
    ensure_wheelhouse,
    podman,
)

pytestmark = pytest.mark.integration

CONFIG = "/etc/bigdata-paas/gunicorn.py"


def build(*args: str, wheels, base: str) -> None:
    done = podman(
        "build",
        "--layers=false",
        "--pull=never",
        "--network=none",
        "--volume",
        f"{wheels}:/wheels:ro",
        "--build-arg",
        f"BASE={base}",
        "--build-arg",
        "PIP_OPTIONS=--no-index --find-links /wheels",
        *args,
        str(ROOT),
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def platform_image() -> Iterator[str]:
    if not podman_works():
        if REQUIRE_SERVICES:
            pytest.fail("PAAS_REQUIRE_SERVICES=1 but podman is missing or does not work")
        pytest.skip("needs podman (apt-get install podman runc)")
    lock = ROOT / "requirements.lock"
    wheels = ensure_wheelhouse(lock)
    base = ensure_base_image(wheels)
    # the deps stage, kept like the base: it changes only with the lock
    deps = f"localhost/paas-test-deps:{hashlib.sha256(lock.read_bytes()).hexdigest()[:16]}"
    if podman("image", "exists", deps).returncode != 0:
        build("--target", "deps", "--tag", deps, wheels=wheels, base=base)
    image = f"localhost/paas-platform-test:{uuid.uuid4().hex[:10]}"
    build("--tag", image, wheels=wheels, base=deps)
    try:
        yield image
    finally:
        podman("rmi", "--force", image)


def test_the_image_runs_the_operator_commands(platform_image):
    done = podman("run", "--rm", "--network=none", platform_image, "paas-server", "--help")
    assert done.returncode == 0, done.stderr
    for command in ("setup", "create-user", "load-hosts", "destroy-all"):
        assert command in done.stdout
    agent = podman("run", "--rm", "--network=none", platform_image, "paas-agent", "--help")
    assert agent.returncode == 0, agent.stderr


PROBE = """
import json, sys, urllib.request
def get(path, token=None):
    request = urllib.request.Request("http://127.0.0.1:5000" + path)
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)
print(json.dumps([get("/bigdata/api/v1/health"), get("/bigdata/api/v1/instances", sys.argv[1]),
                  get("/bigdata/api/v1/instances", "wrong")]))
"""


def test_the_image_serves_the_api_after_setup(platform_image):
    name = f"paas-platform-test-{uuid.uuid4().hex[:10]}"
    started = podman(
        "run",
        "--detach",
        "--name",
        name,
        "--network=none",
        "--env",
        f"PAAS_ADMIN_TOKEN={ADMIN_TOKEN}",
        "--env",
        "PAAS_AGENT_HOSTS=",
        "--env",
        "PAAS_WEB_WORKERS=1",
        "--env",
        "PAAS_WEB_THREADS=8",
        platform_image,
        "sh",
        "-c",
        f"paas-server setup && exec gunicorn -c {CONFIG} bigdata_paas.wsgi:app",
    )
    assert started.returncode == 0, started.stderr
    try:

        def probe():
            done = podman("exec", name, "python3", "-c", PROBE, ADMIN_TOKEN, timeout=60)
            return done.stdout if done.returncode == 0 else None

        answered = wait_until(probe, "the web process in the container", timeout=90, interval=1)
        health, mine, wrong = json.loads(answered)
        assert health[0] == 200
        assert mine[0] == 200 and mine[1]["items"] == []
        assert wrong[0] == 401
        logs = podman("logs", name).stdout
        assert "database ready: sqlite:////var/lib/paas/paas.sqlite3" in logs
    finally:
        podman("rm", "--force", "--volumes", name)
