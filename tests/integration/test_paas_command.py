"""The paas command against a live stack: gunicorn as the Procfile starts it (config/gunicorn.py:
gthread workers that end their streams on SIGTERM) and a real Celery worker.

The command runs as a user runs it, in its own process, off a terminal; its exit codes are
the documented ones (docs/cli.md): 0 reached, 1 failed or refused, 2 usage, 124 timed out,
130 interrupted. The streams under it are also read raw (sockets), to cut one in the middle
and resume it, to open 200 at once while /health keeps answering, and to check that a
user's stream never shows another user's instance.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from bigdata_paas.models import Event
from bigdata_paas.operations.users import create_user
from tests.api.streaming import record
from tests.conftest import (
    ADMIN_TOKEN,
    EXAMPLES,
    ROOT,
    Worker,
    base_env,
    bearer,
    free_port,
    load_example_hosts,
    make_app,
    wait_until,
)
from tests.integration.paas_support import (
    API,
    Live,
    RawStream,
    start_gunicorn,
    stop_group,
    write_service,
)

pytestmark = pytest.mark.integration

#: one node pinned to the host `spare`, which holds one such node: the second one waits
PINNED = {
    "service.json": json.dumps({"name": "pinned", "version": "1", "description": "one node"}),
    "service-template.json": (
        '{"nodes": {"n0": {"cpu": 1, "mem": 64, "required_node": "spare"}}, "services": {}}'
    ),
    "options.json": json.dumps({"required": {"label": "x"}}),
    "orquestrator.py": "import sys\nprint(sys.argv[1], 'done')\n",
}
#: its first start fails (the work dir keeps a mark), every later command succeeds
FLAKY = {
    "service.json": json.dumps({"name": "flaky", "version": "1"}),
    "service-template.json": '{"nodes": {"n0": {"cpu": 1, "mem": 128}}, "services": {}}',
    "options.json": json.dumps({"required": {"n": 1}}),
    "orquestrator.py": (
        "import os, sys\n"
        "if sys.argv[1] == 'start' and not os.path.exists('tried'):\n"
        "    open('tried', 'w').close()\n"
        "    print('first start fails: the disk is on fire', file=sys.stderr)\n"
        "    sys.exit(3)\n"
        "print(sys.argv[1], 'done')\n"
    ),
}
#: a service with no node at all: nothing runs, events are written by the test
SERVICE_TINY = {"name": "tiny", "version": "1"}
TINY_PARTS = {
    "template": '{"nodes": {"n0": {"cpu": 1, "mem": 64}}, "services": {}}',
    "options": json.dumps({"required": {}}),
    "orquestrator": "print('ok')\n",
}
SPARE = {"name": "spare", "address": "127.0.0.1", "cpu": 1, "mem": 100, "disks": []}


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    """The stack, with gluster, pinned and flaky registered through paas, the demo inventory
    (on a random address pool) and the host `spare` already full."""
    root = Path(tempfile.mkdtemp(prefix="paas-cli-"))
    os.chmod(root, 0o711)
    env = base_env(root / "var", PAAS_STREAM_KEEPALIVE="1", PAAS_STREAM_POLL_INTERVAL="0.1")
    app = make_app(env)
    port = free_port()
    web = start_gunicorn(env, port, root / "web.log")
    worker = None
    try:
        worker = Worker({**os.environ, **env}, root / "worker.log").start()
        stack = Live(root, port, env, app, web, root / "web.log")
        setup = app.test_client()
        load_example_hosts(setup, bearer(ADMIN_TOKEN))
        assert (
            setup.post(f"{API}/hosts", json=SPARE, headers=bearer(ADMIN_TOKEN)).status_code == 201
        )
        for folder in (
            EXAMPLES / "gluster" / "3.7.11",
            write_service(root / "pinned" / "1", PINNED),
            write_service(root / "flaky" / "1", FLAKY),
        ):
            done = stack.paas("services", "register", str(folder))
            assert done.returncode == 0, done.stderr
            assert done.stdout.endswith(": registered; ready\n"), done.stdout
        holder = stack.paas("launch", "pinned/1", "--wait", "-o", "json")
        assert holder.returncode == 0, holder.stderr
        yield stack
    finally:
        if worker is not None:
            worker.stop()
        stop_group(web)
        app.extensions["feeds"].close(wait=30)
        app.extensions["celery"].close()
        app.extensions["paas"].db.dispose()
        shutil.rmtree(root, ignore_errors=True)


# -- launch --wait: exit codes ------------------------------------------------------------------


def test_launch_wait_json_prints_the_running_instance_and_exits_0(live):
    done = live.paas("launch", "gluster/3.7.11", "--set", "size=2", "--wait", "-o", "json")
    assert done.returncode == 0, done.stderr
    instance = json.loads(done.stdout)  # only the final instance JSON on stdout
    assert instance["status"] == "running"
    assert instance["options"] == {"size": 2}  # --set typed from the schema: 2, not "2"
    assert [n["name"] for n in instance["nodes"]] == ["gluster0", "gluster1"]
    assert all(n["host"] and n["address"] for n in instance["nodes"])
    assert live.get(f"/instances/{instance['id']}")["status"] == "running"


def test_launch_wait_off_a_terminal_prints_timestamped_lines(live):
    done = live.paas("launch", "flaky/1", "--set", "n=2", "--wait")
    assert done.returncode == 1  # its first start fails (the next test retries one)
    first, *lines = done.stdout.splitlines()
    instance_id = first.split("(id ")[1].split(")")[0]
    assert first == f"launched flaky-{instance_id[:8]} (id {instance_id}); waiting until running"
    events = live.get(f"/instances/{instance_id}/events")["events"]
    assert lines == [
        f"{e['at']}  {e['status']:<10}  {e['step']:<8}  {e['message']}" for e in events
    ]
    assert [e["status"] for e in events][0 :: len(events) - 1] == ["pending", "failed"]


def test_a_failing_orquestrator_exits_1_with_its_step_and_reason_then_retry_runs(live):
    done = live.paas("launch", "flaky/1", "--wait", "-o", "json")
    assert done.returncode == 1
    failed = json.loads(done.stdout)
    assert failed["status"] == "failed"
    assert done.stderr.startswith(f"error: instance {failed['id']} failed at run: ")
    assert "orquestrator start exited with 3" in done.stderr
    assert "first start fails: the disk is on fire" in done.stderr
    retried = live.paas("retry", failed["id"], "--wait", "-o", "json")
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)["status"] == "running"


def test_an_instance_that_cannot_be_placed_yet_times_out_with_124_naming_why(live):
    done = live.paas("launch", "pinned/1", "--wait", "--timeout", "5s", "-o", "json")
    assert done.returncode == 124, done.stderr
    waiting = json.loads(done.stdout)
    assert waiting["status"] == "queued"
    assert "spare" in waiting["waiting_for"]
    assert done.stderr.startswith("error: timed out after 5s: ")
    assert f"instance {waiting['id']} is still queued (waiting for: " in done.stderr
    assert waiting["waiting_for"] in done.stderr


def test_ctrl_c_while_waiting_leaves_the_instance_and_says_how_to_follow_it(live):
    command = subprocess.Popen(
        live.command("launch", "pinned/1", "--wait"),
        env=live.client_env(ADMIN_TOKEN),
        cwd=live.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in command.stdout:  # lines as they come, until it waits in the queue
        seen.append(line)
        if " queued " in line and "waiting: " in line:
            break
    command.send_signal(signal.SIGINT)
    out, err = command.communicate(timeout=60)
    assert command.returncode == 130, (seen, out, err)
    instance_id = seen[0].split("(id ")[1].split(")")[0]
    assert f"paas wait {instance_id} --for running" in err
    assert f"paas events {instance_id} -f" in err
    assert live.get(f"/instances/{instance_id}")["status"] == "queued"  # left alone
    again = live.paas("wait", instance_id, "--timeout", "1s")
    assert again.returncode == 124


def on_a_terminal(live: Live, *args: str) -> tuple[int, str]:
    """Run ``paas ARGS`` on a pseudo-terminal; (exit code, what it drew, escapes removed)."""
    master, slave = os.openpty()
    env = live.client_env(ADMIN_TOKEN, TERM="xterm-256color", COLUMNS="150", LINES="50")
    command = subprocess.Popen(
        live.command(*args), env=env, cwd=live.root, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the command ended and closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    code = command.wait(timeout=60)
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn.decode(errors="replace"))


def test_on_a_terminal_the_wait_is_drawn_live(live):
    code, drawn = on_a_terminal(
        live,
        "launch",
        "gluster/3.7.11",
        "--set",
        "size=1",
        "--set",
        "disks=1",
        "--set",
        "volume.replica=1",
        "--wait",
    )
    assert code == 0, drawn
    assert "(waiting until running)" in drawn  # the live display's head line
    assert "✔" in drawn  # its last frame: reached
    for word in ("node", "host", "address", "gluster0", "running", "placed on"):
        assert word in drawn, (word, drawn[-3000:])
    # while queued, it says why
    code, drawn = on_a_terminal(live, "launch", "pinned/1", "--wait", "--timeout", "3s")
    assert code == 124, drawn
    assert "waiting for: no fit" in drawn
    assert "✘" in drawn


def test_usage_errors_exit_2_and_refusals_exit_1(live):
    for args in (
        ("launch", "gluster"),
        ("launch", "gluster/3.7.11", "--set", "size=two"),
        ("launch", "gluster/3.7.11", "--set", "size"),
        ("launch", "gluster/3.7.11", "--wait", "--timeout", "soon"),
        ("nosuch",),
    ):
        done = live.paas(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
    refused = live.paas("launch", "gluster/3.7.11", "--set", "size=0", "--set", "nope=1")
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "error: 2 problems (400 invalid_input):",
        "  size: must be >= 1, got 0",
        "  nope: unknown option",
    ]
    missing = live.paas("get", "0" * 32)
    assert (missing.returncode, missing.stderr) == (1, f"error: instance {'0' * 32} not found\n")
    anonymous = live.paas("list", token=None)
    assert anonymous.returncode == 2 and "no token" in anonymous.stderr


def test_follow_events_and_logs_then_destroy_wait(live):
    launched = live.paas(
        "launch",
        "gluster/3.7.11",
        "--set",
        "size=1",
        "--set",
        "disks=1",
        "--set",
        "volume.replica=1",
        "-o",
        "json",
    )
    assert launched.returncode == 0, launched.stderr
    instance_id = json.loads(launched.stdout)["id"]
    env = live.client_env(ADMIN_TOKEN)
    events = subprocess.Popen(
        live.command("events", instance_id, "-f", "-o", "jsonl"),
        env=env,
        cwd=live.root,
        stdout=subprocess.PIPE,
        text=True,
    )
    logs = subprocess.Popen(
        live.command("logs", instance_id, "-f"),
        env=env,
        cwd=live.root,
        stdout=subprocess.PIPE,
        text=True,
    )
    running = live.paas("wait", instance_id, "--for", "running", "--timeout", "60s")
    assert running.returncode == 0, running.stderr
    destroyed = live.paas("destroy", instance_id, "--wait", "-o", "json")
    assert destroyed.returncode == 0, destroyed.stderr
    assert json.loads(destroyed.stdout)["status"] == "destroyed"
    followed = [json.loads(line) for line in events.communicate(timeout=60)[0].splitlines()]
    assert events.returncode == 0  # the stream ended with the instance
    assert followed == live.get(f"/instances/{instance_id}/events")["events"]
    assert [e["status"] for e in followed][-2:] == ["destroying", "destroyed"]
    lines = logs.communicate(timeout=60)[0].splitlines()
    assert logs.returncode == 0
    assert lines == [line["line"] for line in live.get(f"/instances/{instance_id}/logs")["lines"]]
    assert any("gluster0: serving its config" in line for line in lines)


def test_plan_list_get_services_and_admin_commands(live):
    plan = live.paas("plan", "gluster/3.7.11", "--set", "size=2", "-o", "json")
    assert plan.returncode == 0 and json.loads(plan.stdout)["fits"] is True
    listed = live.paas("list", "--service", "gluster", "-o", "jsonl")
    assert listed.returncode == 0
    items = [json.loads(line) for line in listed.stdout.splitlines()]
    assert items and {i["service"] for i in items} == {"gluster"}
    table = live.paas("list", "--status", "running")
    assert table.stdout.splitlines()[0].split() == [
        "ID",
        "NAME",
        "SERVICE",
        "STATUS",
        "USER",
        "CREATED",
        "NOTE",
    ]
    shown = live.paas("services", "show", "gluster/3.7.11")
    assert "size            integer  2" in shown.stdout
    for args, first in ((("hosts",), "NAME"), (("networks",), "NAME"), (("users",), "NAME")):
        done = live.paas(*args)
        assert done.returncode == 0 and done.stdout.split()[0] == first, (args, done.stderr)
    user = live.paas("users", "create", "erin", "-o", "json")
    token = json.loads(user.stdout)["token"]
    forbidden = live.paas("hosts", token=token)
    assert (forbidden.returncode, forbidden.stderr) == (
        1,
        "error: this operation needs the admin role\n",
    )


def test_login_saves_url_and_token_privately(live):
    home = live.root / "login-home"
    env = {"XDG_CONFIG_HOME": str(home)}
    done = subprocess.run(
        live.command("login", "--url", live.url + API, "--token", ADMIN_TOKEN),
        env={**live.client_env(None, **env), "PAAS_URL": ""},
        cwd=live.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    path = home / "paas" / "config.json"
    assert done.stdout == f"logged in to {live.url}{API} (admin); saved to {path} (mode 0600)\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": live.url + API, "token": ADMIN_TOKEN}
    listed = subprocess.run(
        live.command("list", "-o", "json"),
        env={**live.client_env(None, **env), "PAAS_URL": ""},
        cwd=live.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    bad = subprocess.run(
        live.command("login", "--url", live.url, "--token", "wrong"),
        env={**live.client_env(None, XDG_CONFIG_HOME=str(live.root / "other"))},
        cwd=live.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and not (live.root / "other").exists()


# -- the streams under it -----------------------------------------------------------------------


def test_a_stream_cut_in_the_middle_resumes_with_last_event_id_each_event_once(live):
    launched = live.paas(
        "launch",
        "gluster/3.7.11",
        "--set",
        "size=1",
        "--set",
        "disks=1",
        "--set",
        "volume.replica=1",
        "-o",
        "json",
    )
    instance_id = json.loads(launched.stdout)["id"]
    first = RawStream(live.port, f"/instances/{instance_id}/events/stream", ADMIN_TOKEN)
    first.read_until(lambda text: '"status":"pending"' in text)
    seen = first.events()
    first.close()  # cut after the first event, while the instance is on its way
    resumed = RawStream(
        live.port, f"/instances/{instance_id}/events/stream", ADMIN_TOKEN, last_id=seen[-1]["id"]
    )
    resumed.read_until(lambda text: False)  # until the server ends it: at running
    resumed.close()
    assert resumed.ended
    rest = resumed.events()
    everything = live.get(f"/instances/{instance_id}/events")["events"]
    assert seen + rest == everything
    assert everything[-1]["status"] == "running"
    assert len({e["id"] for e in seen + rest}) == len(seen + rest)


def test_a_users_streams_never_show_another_users_instance(live):
    rt = live.app.extensions["paas"]
    alice = create_user(rt, "alice-streams", "user", actor="admin")["token"]
    bob = create_user(rt, "bob-streams", "user", actor="admin")["token"]
    bobs = RawStream(live.port, "/events/stream", bob)
    bobs.read_until(lambda text: "retry:" in text)
    alices = json.loads(live.paas("launch", "pinned/1", "-o", "json", token=alice).stdout)
    own = json.loads(live.paas("launch", "pinned/1", "-o", "json", token=bob).stdout)
    bobs.read_until(lambda text: own["id"] in text)
    assert {e["instance_id"] for e in bobs.events()} == {own["id"]}
    assert alices["id"] not in bobs.text
    bobs.close()
    refused = requests.get(
        f"{live.url}{API}/instances/{alices['id']}/events/stream", headers=bearer(bob), timeout=30
    )
    assert refused.status_code == 404
    for instance in (alices, own):
        assert live.paas("destroy", instance["id"], "--wait").returncode == 0


@pytest.mark.load
def test_200_open_streams_while_health_answers_within_a_second(live):
    streams = [RawStream(live.port, "/events/stream", ADMIN_TOKEN) for _ in range(200)]
    try:
        for stream in streams:
            stream.read_until(lambda text: "retry:" in text)  # each one is being served
        for _ in range(5):
            began = time.monotonic()
            response = requests.get(f"{live.url}{API}/health", timeout=30)
            elapsed = time.monotonic() - began
            assert response.status_code == 200
            assert elapsed < 1.0, f"/health took {elapsed:.2f} s with 200 streams open"
        # and every stream is live: each shows the next launch
        launched = json.loads(live.paas("launch", "pinned/1", "-o", "json").stdout)
        for stream in streams:
            stream.read_until(lambda text: launched["id"] in text)
        assert all(launched["id"] in s.text for s in streams)
    finally:
        for stream in streams:
            stream.close()
    assert live.paas("destroy", launched["id"], "--wait").returncode == 0


def test_the_readmes_follow_a_launch_runs_as_written(live, tmp_path):
    """README.md's "Follow a launch" block, line by line in one shell, against this stack
    (its URL for the README's), with `paas` as this checkout's; every line exits 0."""
    if shutil.which("curl") is None:
        pytest.skip("needs the curl binary")
    section = (ROOT / "README.md").read_text().split("\n## Follow a launch\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    first, *lines = [line for line in block.splitlines() if line.strip()]
    assert first == 'export PATH="$PWD/.venv/bin:$PATH"'
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "paas").write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m bigdata_paas.client "$@"\n'
    )
    (shim / "paas").chmod(0o755)
    script = [f'export PATH="{shim}:$PATH"']
    for line in lines:
        script += [line.replace("http://127.0.0.1:5000", live.url), 'echo "__rc=$?"']
    env = live.client_env(None, XDG_CONFIG_HOME=str(tmp_path / "config"))
    del env["PAAS_URL"]  # paas login saves it, as for a reader
    env.update(
        PAAS_ADMIN_TOKEN=ADMIN_TOKEN,
        API=live.url + API,
        AUTH=f"Authorization: Bearer {ADMIN_TOKEN}",
    )
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    codes = [line for line in done.stdout.splitlines() if line.startswith("__rc=")]
    assert codes == ["__rc=0"] * len(lines), (lines, done.stdout, done.stderr)
    assert "exit 124" in done.stdout, done.stdout
    assert "waiting for: no fit" in done.stderr, done.stderr
    assert "event: running" in done.stdout  # the curl of the stream
    queued = [
        i
        for i in live.get("/instances?status=queued&service=gluster")["items"]
        if i["options"].get("cpu") == 16
    ]
    assert len(queued) == 1
    requests.delete(f"{live.url}{API}/instances/{queued[0]['id']}", headers=bearer(ADMIN_TOKEN))


def test_streams_end_when_the_client_leaves_and_when_the_worker_stops(tmp_path):
    """One worker holding one stream (5 threads, 4 in reserve): a second is refused until the
    first client leaves; SIGTERM ends the open stream at once, cleanly."""
    root = tmp_path / "var"
    env = base_env(root, PAAS_WEB_THREADS="5", PAAS_STREAM_KEEPALIVE="0.2", PAAS_WEB_WORKERS="1")
    app = make_app(env)
    port = free_port()
    web = start_gunicorn(env, port, tmp_path / "web.log")
    try:
        first = RawStream(port, "/events/stream", ADMIN_TOKEN)
        first.read_until(lambda text: "retry:" in text)
        second = requests.get(
            f"http://127.0.0.1:{port}{API}/events/stream", headers=bearer(ADMIN_TOKEN), timeout=30
        )
        assert second.status_code == 503
        assert second.json()["error"]["code"] == "too_many_streams"
        assert requests.get(f"http://127.0.0.1:{port}{API}/health", timeout=30).ok
        first.close()  # the client goes away; the server notices at its next keep-alive

        def opened() -> RawStream | None:
            stream = RawStream(port, "/events/stream", ADMIN_TOKEN)
            stream.read_until(lambda text: "\r\n\r\n" in text)
            if stream.text.startswith("HTTP/1.1 200"):
                return stream
            stream.close()
            return None

        third = wait_until(opened, "the first stream's place to be given back")
        third.read_until(lambda text: "retry:" in text)
        os.kill(web.pid, signal.SIGTERM)  # gunicorn's master: a graceful stop
        third.read_until(lambda text: False)
        third.close()
        assert third.ended  # the stream ended (the client would resume elsewhere)
        assert web.wait(timeout=60) == 0
    finally:
        stop_group(web)
        app.extensions["paas"].db.dispose()
    log = (tmp_path / "web.log").read_text()
    assert "Traceback" not in log and "Worker exiting" in log


def test_a_dropped_stream_reconnects_and_resumes_each_event_once(tmp_path):
    """`paas events -f` while the web process stops and starts again: the command waits,
    reconnects after the last event it printed, and ends with every event once."""
    env = base_env(tmp_path / "var", PAAS_STREAM_KEEPALIVE="0.5")
    app = make_app(env)
    setup = app.test_client()
    admin = bearer(ADMIN_TOKEN)
    assert setup.post(f"{API}/services", json=SERVICE_TINY, headers=admin).status_code == 201
    for part, body in TINY_PARTS.items():
        put = setup.put(f"{API}/services/tiny/1/{part}", data=body, headers=admin)
        assert put.status_code == 200, put.get_json()
    instance_id = setup.post(f"{API}/services/tiny/1", json={}, headers=admin).get_json()["id"]
    port = free_port()
    web = start_gunicorn(env, port, tmp_path / "web.log")
    live = Live(tmp_path, port, env, app, web, tmp_path / "web.log")
    follower = subprocess.Popen(
        live.command("events", instance_id, "-f", "-o", "jsonl"),
        env=live.client_env(ADMIN_TOKEN),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = [json.loads(follower.stdout.readline())]  # the launch event
        stop_group(web)  # the stream drops; the command keeps trying
        record(app, instance_id, "prepare", "prepared", "while the server was away")
        web = start_gunicorn(env, port, tmp_path / "web.log")
        record(app, instance_id, "destroy", "destroying", "")
        record(app, instance_id, "destroy", "destroyed", "")
        out, err = follower.communicate(timeout=120)
    finally:
        if follower.poll() is None:
            follower.kill()
        stop_group(web)
        app.extensions["paas"].db.dispose()
    assert follower.returncode == 0, err
    printed += [json.loads(line) for line in out.splitlines()]
    with app.extensions["paas"].db.session() as session:
        expected = [e.to_dict() for e in session.scalars(select(Event).order_by(Event.id))]
    assert printed == expected
    assert [e["status"] for e in printed] == ["pending", "prepared", "destroying", "destroyed"]


# -- resize ----------------------------------------------------------------------------------

#: ``n`` nodes; its orquestrator refuses a scale-out to 3 nodes
GROW = {
    "service.json": json.dumps({"name": "grow", "version": "1"}),
    "service-template.json": (
        '{% set c = joiner(",") %}{"nodes": { {% for i in range(opts["n"]) %}{{ c() }}'
        '"n{{ i }}": {"cpu": 1, "mem": 64}{% endfor %}}, "services": {}}'
    ),
    "options.json": json.dumps({"required": {"n": 1}}),
    "orquestrator.py": (
        "# paas-actions: scale-out decommission\n"
        "import json, os, sys\n"
        "doc = json.load(open(os.environ['PAAS_INSTANCE_FILE']))\n"
        "if sys.argv[1] == 'scale-out' and len(doc['nodes']) == 3:\n"
        "    sys.exit('no room in the ring (injected)')\n"
        "print(sys.argv[1], len(doc['nodes']))\n"
    ),
}


def test_resize_previews_then_waits_and_exits_1_when_rolled_back(live):
    done = live.paas("services", "register", str(write_service(live.root / "grow" / "1", GROW)))
    assert done.returncode == 0, done.stderr
    launched = live.paas("launch", "grow/1", "--wait", "-o", "json")
    assert launched.returncode == 0, launched.stderr
    instance_id = json.loads(launched.stdout)["id"]

    preview = live.paas("resize", instance_id, "--set", "n=2", "--dry-run")
    assert preview.returncode == 0, preview.stderr
    lines = preview.stdout.splitlines()
    assert lines[0] == "scale-out: n1 (+1 node(s), +1 cpu, +64 MB, +0 disk(s))"
    assert any(line.startswith("n1 ") for line in lines[1:]), preview.stdout
    assert live.get(f"/instances/{instance_id}")["options"] == {}  # the defaults: n=1

    grown = live.paas("resize", instance_id, "--set", "n=2", "--wait", "-o", "json")
    assert grown.returncode == 0, grown.stderr
    body = json.loads(grown.stdout)
    assert body["status"] == "running" and body["options"] == {"n": 2}
    assert [n["name"] for n in body["nodes"]] == ["n0", "n1"]

    refused = live.paas("resize", instance_id, "--set", "n=3", "--wait")
    assert refused.returncode == 1, refused.stdout
    assert "resize rolled back" in refused.stderr and "no room in the ring" in refused.stderr
    body = live.get(f"/instances/{instance_id}")
    assert body["status"] == "running" and body["options"] == {"n": 2}
    assert [n["name"] for n in body["nodes"]] == ["n0", "n1"]

    assert live.paas("resize", instance_id).returncode == 2  # no option: a usage error
    changed = live.paas("resize", instance_id, "--set", "n=1", "--set", "n=2")
    assert changed.returncode == 1 and "nothing to resize" in changed.stderr
    assert live.paas("destroy", instance_id, "--wait").returncode == 0
