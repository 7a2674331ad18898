"""Renderers: one process serves successive renders of one template, each under its own limits.

Real renderers, a real zygote: the pool's idle renderers (``supervisor.RENDERERS``) and
``/proc`` say which process served a render and what limits it had.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bigdata_paas.errors import TemplateError
from bigdata_paas.rendering import RenderLimits, codecache, render_text, supervisor

MB = 1024 * 1024
FAST = RenderLimits(timeout=1.0)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_pool():
    """Each test starts with no idle renderer, and leaves no zombie of its own behind."""
    supervisor.RENDERERS.clear()
    yield
    supervisor.RENDERERS.clear()
    try:
        assert os.waitpid(-1, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        pass


def idle(source: str, limits: RenderLimits = FAST) -> list[supervisor._Renderer]:
    """The idle renderers of this template."""
    _env, fingerprint = codecache.environment(limits)
    key = codecache.cache_key(fingerprint, source)
    return [r for r in supervisor.RENDERERS.idle_renderers() if r.identity[:2] == (limits, key)]


def served_by(source: str, limits: RenderLimits = FAST) -> int:
    """The pid of the one idle renderer of this template (the one that just rendered it)."""
    renderers = idle(source, limits)
    assert len(renderers) == 1
    return renderers[0].pid


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: list[int], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while any(running(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if running(p)]}"
        time.sleep(0.02)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def cpu_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max cpu time"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no cpu limit line")


def test_renders_of_one_template_reuse_its_renderer() -> None:
    source = "reuse {{ n }}"
    pids = []
    for n in range(5):
        assert render_text(source, {"n": n}, limits=FAST) == f"reuse {n}"
        pids.append(served_by(source))
    assert len(set(pids)) == 1 and pids[0] > 0
    assert idle(source)[0].renders == 5


def test_another_template_never_gets_that_renderer() -> None:
    first, second = "first {{ n }}", "second {{ n }}"
    seen: dict[str, set[int]] = {first: set(), second: set()}
    for n in range(4):
        for source in (first, second):
            assert render_text(source, {"n": n}, limits=FAST) == source.replace("{{ n }}", str(n))
            seen[source].add(served_by(source))
    assert len(seen[first]) == len(seen[second]) == 1
    assert not seen[first] & seen[second]
    # Other limits make another renderer too (its environment and its limits differ).
    other = RenderLimits(timeout=2.0)
    render_text(first, {"n": 0}, limits=other)
    assert served_by(first, other) not in seen[first]


BRANCHES = (
    "{% if mode == 'loop' %}"
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    "{% elif mode == 'memory' %}{{ 'x'.ljust(1000000000)|length }}"
    "{% elif mode == 'big' %}{% for i in range(100000) %}xxxxxxxxxxxxxxxxxxxx{% endfor %}"
    "{% elif mode == 'error' %}{{ 1 // 0 }}"
    "{% else %}fine {{ n }}{% endif %}"
)
BRANCH_LIMITS = RenderLimits(timeout=1.0, max_memory=256 * MB, max_output=100_000)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("loop", r"took longer than 1\.0 s to render"),
        ("memory", "more than 256 MB"),
        ("big", "larger than 100000 characters"),
        ("error", "ZeroDivisionError"),
    ],
)
def test_after_a_failed_render_the_next_runs_in_a_fresh_renderer(mode: str, message: str) -> None:
    assert render_text(BRANCHES, {"mode": "ok", "n": 1}, limits=BRANCH_LIMITS) == "fine 1"
    before = served_by(BRANCHES, BRANCH_LIMITS)
    with pytest.raises(TemplateError, match=message):
        render_text(BRANCHES, {"mode": mode, "n": 2}, limits=BRANCH_LIMITS)
    assert idle(BRANCHES, BRANCH_LIMITS) == []  # it was not given back
    wait_gone([before])
    assert render_text(BRANCHES, {"mode": "ok", "n": 3}, limits=BRANCH_LIMITS) == "fine 3"
    assert served_by(BRANCHES, BRANCH_LIMITS) != before


def test_a_renderer_that_died_while_idle_is_replaced_without_an_error() -> None:
    source = "idle {{ n }}"
    render_text(source, {"n": 1}, limits=FAST)
    victim = served_by(source)
    os.kill(victim, signal.SIGKILL)
    wait_gone([victim])
    assert render_text(source, {"n": 2}, limits=FAST) == "idle 2"
    assert served_by(source) != victim


def test_a_render_context_never_reaches_a_later_render() -> None:
    source = (
        "{% set kept = opts %}{{ opts|tojson }}|{{ secret|default('none') }}"
        "|{{ kept|tojson }}|{{ (namespace(v=secret|default('none'))).v }}"
    )
    first = render_text(source, {"opts": {"a": "s3cr3t"}, "secret": "hunter2"}, limits=FAST)
    assert first == '{"a": "s3cr3t"}|hunter2|{"a": "s3cr3t"}|hunter2'
    pid = served_by(source)
    for _ in range(3):
        later = render_text(source, {"opts": {"b": 1}}, limits=FAST)
        assert later == '{"b": 1}|none|{"b": 1}|none'
    assert served_by(source) == pid


def test_each_render_draws_fresh_random_numbers() -> None:
    """As in a process forked for each render (the fork reseeds ``random``): the renderer
    reseeds before each render, so no draw depends on an earlier render's."""
    source = "{{ range(100000)|random }} {{ lipsum(1, html=False, min=5, max=9) }}"
    outputs = {render_text(source, {"n": n}, limits=FAST) for n in range(4)}
    assert len(outputs) == 4
    assert idle(source)[0].renders == 4


def test_each_render_gets_a_cpu_budget_on_top_of_what_the_renderer_used() -> None:
    limits = RenderLimits(timeout=3.0)
    source = "{% for i in range(n) %}{% for j in range(100000) %}{% endfor %}{% endfor %}done"
    assert render_text(source, {"n": 1}, limits=limits) == "done"
    pid = served_by(source, limits)
    # A fresh process's budget is ceil(3.0) + 1 = 4 s of CPU; use more than 1 s of CPU first.
    while cpu_seconds(pid) < 1.05:
        assert render_text(source, {"n": 20}, limits=limits) == "done"
    assert render_text(source, {"n": 1}, limits=limits) == "done"
    assert served_by(source, limits) == pid
    used = cpu_seconds(pid)
    soft, hard = cpu_limits(pid)
    budget = math.ceil(limits.timeout) + 1
    # The last render's soft limit: the CPU it had used (whole seconds) plus a whole budget.
    assert int(used) + budget - 1 <= soft <= int(used) + budget
    assert soft > budget  # moved with the CPU used: not the first render's limit
    assert hard >= soft + 1  # SIGKILL stays a second behind SIGXCPU
    # ... and a render that loops still ends at its deadline, in that renderer.
    with pytest.raises(TemplateError, match=r"took longer than 3\.0 s"):
        render_text(source, {"n": 100000}, limits=limits)
    wait_gone([pid])


def test_a_renderer_is_replaced_after_its_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "MAX_RENDERS", 3)
    source = "count {{ n }}"
    pids = []
    for n in range(2):
        render_text(source, {"n": n}, limits=FAST)
        pids.append(served_by(source))
    render_text(source, {"n": 2}, limits=FAST)  # its third: it is closed
    assert idle(source) == []
    render_text(source, {"n": 3}, limits=FAST)
    assert pids[0] == pids[1] != served_by(source)
    wait_gone([pids[0]])


def test_idle_renderers_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    render_text("old {{ n }}", {"n": 1}, limits=FAST)
    old = served_by("old {{ n }}")
    monkeypatch.setattr(supervisor, "IDLE_SECONDS", 0.0)
    render_text("new {{ n }}", {"n": 1}, limits=FAST)
    assert idle("old {{ n }}") == []
    wait_gone([old])


def test_the_pool_is_bounded() -> None:
    sources = [f"bounded {i} {{{{ n }}}}" for i in range(supervisor.MAX_IDLE + 4)]
    for source in sources:
        render_text(source, {"n": 1}, limits=FAST)
    kept = supervisor.RENDERERS.idle_renderers()
    assert len(kept) == supervisor.MAX_IDLE
    assert [idle(source) != [] for source in sources] == [False] * 4 + [True] * (len(sources) - 4)


def test_renderers_hold_no_secret_and_no_descriptor_but_their_pipes() -> None:
    os.environ["PAAS_TEST_SECRET"] = "hunter2"
    try:
        render_text("clean {{ n }}", {"n": 1}, limits=FAST)
        pid = served_by("clean {{ n }}")
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"hunter2" not in environ and b"PAAS_" not in environ
        beyond_stdio = [
            os.readlink(f"/proc/{pid}/fd/{fd}")
            for fd in os.listdir(f"/proc/{pid}/fd")
            if int(fd) > 2
        ]
        assert len(beyond_stdio) == 2 and all(t.startswith("pipe:") for t in beyond_stdio)
        core = Path(f"/proc/{pid}/limits").read_text().split("Max core file size")[1]
        assert core.split()[:2] == ["0", "0"]
    finally:
        del os.environ["PAAS_TEST_SECRET"]


def test_renderers_die_with_the_zygote() -> None:
    render_text("zygote {{ n }}", {"n": 1}, limits=FAST)
    pid = served_by("zygote {{ n }}")
    zygote = supervisor._ZYGOTES._process
    assert zygote is not None
    os.kill(zygote.pid, signal.SIGKILL)
    zygote.wait()
    wait_gone([pid])
    assert render_text("zygote {{ n }}", {"n": 2}, limits=FAST) == "zygote 2"


RENDER_AND_WAIT = """
import json, sys, time
from bigdata_paas.rendering import render_text, supervisor
for source in ("a {{ n }}", "b {{ n }}"):
    render_text(source, {"n": 1})
pids = [r.pid for r in supervisor.RENDERERS.idle_renderers()]
print(json.dumps({"zygote": supervisor._ZYGOTES._process.pid, "renderers": pids}), flush=True)
time.sleep(60)
"""


def test_no_renderer_outlives_its_parent_process() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", RENDER_AND_WAIT],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )
    try:
        started = json.loads(parent.stdout.readline())  # type: ignore[union-attr]
        assert len(started["renderers"]) == 2 and all(running(p) for p in started["renderers"])
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()  # type: ignore[union-attr]
    wait_gone([started["zygote"], *started["renderers"]])


def test_a_forked_process_starts_its_own_renderers() -> None:
    source = "fork {{ n }}"
    render_text(source, {"n": 1}, limits=FAST)
    ours = served_by(source)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked child
        code = 1
        try:
            assert supervisor.RENDERERS.idle_renderers() == []
            text = render_text(source, {"n": 2}, limits=FAST)
            os.write(write, json.dumps([text, served_by(source)]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        text, theirs = json.loads(pipe.read())
    assert os.waitpid(pid, 0)[1] == 0
    assert text == "fork 2" and theirs != ours
    assert render_text(source, {"n": 3}, limits=FAST) == "fork 3"
    assert served_by(source) == ours


def test_concurrent_renders_from_many_threads() -> None:
    sources = [f"thread {i} {{{{ n }}}} {{{{ t }}}}" for i in range(3)]
    failures: list[str] = []

    def work(thread: int) -> None:
        for n in range(20):
            source = sources[(thread + n) % len(sources)]
            expected = source.replace("{{ n }}", str(n)).replace("{{ t }}", str(thread))
            try:
                got = render_text(source, {"n": n, "t": thread}, limits=RenderLimits(timeout=10))
            except Exception as exc:  # reported below, with the others
                failures.append(repr(exc))
            else:
                if got != expected:
                    failures.append(f"{got!r} != {expected!r}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    kept = supervisor.RENDERERS.idle_renderers()
    assert 3 <= len(kept) <= 3 * supervisor.MAX_IDLE_PER_TEMPLATE
    assert all(r.renders >= 1 for r in kept)
