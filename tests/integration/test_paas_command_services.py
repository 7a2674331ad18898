"""paas launch --wait and a resumed stream on the production pair: PostgreSQL (where event ids
commit out of order, see operations/feeds/) and RabbitMQ, through gunicorn."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import (
    ADMIN_TOKEN,
    EXAMPLES,
    Worker,
    bearer,
    free_port,
    load_example_hosts,
    make_app,
)
from tests.integration.paas_support import Live, RawStream, start_gunicorn, stop_group

pytestmark = [pytest.mark.integration, pytest.mark.services]


def test_launch_wait_and_a_stream_resumed_mid_launch(services_env, tmp_path):
    env = {**services_env, "PAAS_STREAM_POLL_INTERVAL": "0.1", "PAAS_STREAM_KEEPALIVE": "1"}
    app = make_app(env)
    port = free_port()
    web = start_gunicorn(env, port, tmp_path / "web.log")
    worker = None
    try:
        worker = Worker({**os.environ, **env}, tmp_path / "worker.log").start()
        live = Live(tmp_path, port, env, app, web, tmp_path / "web.log")
        load_example_hosts(app.test_client(), bearer(ADMIN_TOKEN))
        registered = live.paas("services", "register", str(EXAMPLES / "gluster" / "3.7.11"))
        assert registered.returncode == 0, registered.stderr

        done = live.paas("launch", "gluster/3.7.11", "--set", "size=2", "--wait", "-o", "json")
        assert done.returncode == 0, done.stderr
        first = json.loads(done.stdout)
        assert first["status"] == "running" and len(first["nodes"]) == 2

        launched = live.paas("launch", "gluster/3.7.11", "--set", "size=1", "-o", "json")
        instance_id = json.loads(launched.stdout)["id"]
        path = f"/instances/{instance_id}/events/stream"
        cut = RawStream(port, path, ADMIN_TOKEN)
        cut.read_until(lambda text: '"status":"pending"' in text)
        seen = cut.events()
        cut.close()
        resumed = RawStream(port, path, ADMIN_TOKEN, last_id=seen[-1]["id"])
        resumed.read_until(lambda text: False)  # the server ends it at running
        resumed.close()
        everything = live.get(f"/instances/{instance_id}/events")["events"]
        assert seen + resumed.events() == everything
        assert everything[-1]["status"] == "running"

        for instance in (first["id"], instance_id):
            gone = live.paas("destroy", instance, "--wait", "-o", "json")
            assert gone.returncode == 0, gone.stderr
            assert json.loads(gone.stdout)["status"] == "destroyed"
    finally:
        if worker is not None:
            worker.stop()
        stop_group(web)
        app.extensions["feeds"].close(wait=30)
        app.extensions["celery"].close()
        app.extensions["paas"].db.dispose()
