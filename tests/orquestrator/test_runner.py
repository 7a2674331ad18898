"""``run_script`` on hostile and broken orquestrators: exit codes, signals, limits, isolation.

Every script here is bounded on its own (its sleeps end, its loops are capped), so a broken
limit makes a test fail, never the machine fall over; every process a script leaves behind
is killed at teardown whatever the test found.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import re
import resource
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bigdata_paas.orquestrator import RunResult, ScriptLimits, run_script
from bigdata_paas.orquestrator.runner import SAFE_PATH, TRUNCATED, Launchers, reachable_workdir

LIMITS = ScriptLimits(timeout=3, max_output=10_000, max_memory=256 * 1024 * 1024, max_processes=64)


def nobody_processes() -> int:
    """How many processes ``nobody`` runs now: RLIMIT_NPROC counts them all (another test's
    node or orquestrator may still be one), so a script's own share is on top of them."""
    try:
        uid = pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return 0
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith("Uid:"):
                    count += int(line.split()[1]) == uid
                    break
        except (OSError, ValueError):
            continue
    return count


def current_limits() -> ScriptLimits:
    """LIMITS, with room for the processes of ``nobody`` that already run."""
    return dataclasses.replace(LIMITS, max_processes=LIMITS.max_processes + nobody_processes())


DOCUMENT = {"id": "i-1", "name": "web-1", "service": "web", "version": "1", "nodes": []}
AS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not AS_ROOT, reason="scripts only change user when run as root")

#: the variables docs/orquestrators.md promises, and nothing else
DOCUMENTED = {
    "PATH",
    "HOME",
    "LANG",
    "PYTHONUNBUFFERED",
    "PAAS_INSTANCE_FILE",
    "PAAS_INSTANCE_ID",
    "PAAS_INSTANCE_NAME",
    "PAAS_SERVICE",
    "PAAS_VERSION",
    "PAAS_USER",
    "PAAS_WORKDIR",
}
SCRIPT_ENV = {
    "PAAS_INSTANCE_ID": "i-1",
    "PAAS_INSTANCE_NAME": "web-1",
    "PAAS_SERVICE": "web",
    "PAAS_VERSION": "1",
    "PAAS_USER": "alice",
}


class Run:
    """One ``run_script`` call: its result and every (stream, line) it reported."""

    def __init__(self, result: RunResult, lines: list[tuple[str, str]], workdir: Path) -> None:
        self.result, self.lines, self.workdir = result, lines, workdir

    def text(self, stream: str | None = None) -> list[str]:
        return [line for s, line in self.lines if stream in (None, s)]

    def pids(self, label: str) -> list[int]:
        """The pids the script printed as ``<label> <pid>``."""
        found = [re.fullmatch(rf"{label} (\d+)", line) for line in self.text()]
        return [int(m.group(1)) for m in found if m]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a parent to reap it counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def survivors(pids: list[int], grace: float = 5.0) -> list[int]:
    """The pids still alive after ``grace`` seconds (SIGKILLed processes take a moment)."""
    deadline = time.monotonic() + grace
    while True:
        left = [pid for pid in pids if alive(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """Pids to SIGKILL at teardown, whatever the test found."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert survivors(pids) == []
    # Zombies still count against nobody's RLIMIT_NPROC: let init reap them before the next
    # test forks (bounded; a slow reaper is the machine's business, not a failure here).
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A work dir below a 0711 temp dir, so that ``nobody`` reaches it without a stand-in."""
    root = Path(tempfile.mkdtemp(prefix="paas-orq-"))
    os.chmod(root, 0o711)
    workdir = root / "work" / "instance"
    assert reachable_workdir(workdir) == workdir
    yield workdir
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def run(workdir, reaper):
    """Run a script like the worker does; the pids it prints (``child <pid>``) get reaped."""

    def run(script: str, command: str = "start", limits: ScriptLimits | None = None) -> Run:
        lines: list[tuple[str, str]] = []
        limits = limits or current_limits()
        run.limits = limits
        result = run_script(
            script,
            command,
            DOCUMENT,
            workdir,
            env=SCRIPT_ENV,
            limits=limits,
            on_output=lambda stream, line: lines.append((stream, line)),
        )
        done = Run(result, lines, workdir)
        for line in done.text():
            match = re.fullmatch(r"(?:script|child|daemon) (\d+)", line)
            if match:
                reaper.append(int(match.group(1)))
        return done

    return run


# --- how a script ends ------------------------------------------------------------------

EXIT_0 = 'import sys\nprint("hello", sys.argv[1])\n'
EXIT_7 = 'import sys\nprint("half done")\nprint("cannot go on", file=sys.stderr)\nsys.exit(7)\n'
CRASH = 'import sys\nprint("starting")\nraise RuntimeError("boom in " + sys.argv[1])\n'
SIGKILLED = 'import os\nprint("about to die")\nos.kill(os.getpid(), 9)\nprint("survived")\n'
MEMORY_HOG = """
print("allocating")
hog = bytearray(2 * 1024 * 1024 * 1024)
print("allocated", len(hog))
"""
SHEBANG_SH = '#!/bin/sh\necho "shell $1 $(basename "$0")"\nexit 4\n'
SHEBANG_PYTHON = (
    "#!/usr/bin/env python3\nimport sys\nprint('python isolated', sys.flags.isolated)\n"
)

ENDINGS = [
    # (id, script, exit code, signal, output that must be there, description fragment)
    ("exit-0", EXIT_0, 0, None, [("stdout", "hello start")], "exited with 0"),
    (
        "exit-7",
        EXIT_7,
        7,
        None,
        [("stdout", "half done"), ("stderr", "cannot go on")],
        "exited with 7",
    ),
    (
        "crash",
        CRASH,
        1,
        None,
        [
            ("stdout", "starting"),
            ("stderr", "Traceback (most recent call last):"),
            ("stderr", "RuntimeError: boom in start"),
        ],
        "exited with 1",
    ),
    ("sigkill", SIGKILLED, -9, 9, [("stdout", "about to die")], "was killed by signal 9"),
    (
        "memory-hog",
        MEMORY_HOG,
        1,
        None,
        [("stdout", "allocating"), ("stderr", "MemoryError")],
        "exited with 1",
    ),
    # /bin/sh runs it: as Python it would be a SyntaxError (exit 1), not exit 4
    ("shebang-sh", SHEBANG_SH, 4, None, [("stdout", "shell start orquestrator")], "exited with 4"),
    ("shebang-python", SHEBANG_PYTHON, 0, None, [("stdout", "python isolated 1")], "exited with 0"),
]


@pytest.mark.parametrize(
    ("script", "code", "signum", "expected", "described"),
    [pytest.param(*case[1:], id=case[0]) for case in ENDINGS],
)
def test_how_a_script_ends_is_reported(run, script, code, signum, expected, described):
    done = run(script)
    assert done.result.exit_code == code, done.lines
    assert done.result.signal == signum
    assert not done.result.timed_out
    assert not done.result.truncated
    assert done.result.ok is (code == 0)
    for line in expected:
        assert line in done.lines, done.lines
    assert described in done.result.describe("start")
    # nothing printed after the point of failure
    assert "survived" not in done.text()
    assert not any(line.startswith("allocated ") for line in done.text())


@pytest.mark.security
def test_the_test_process_is_unharmed_by_a_memory_hog(run):
    """RLIMIT_AS is set in the child only: the caller can still allocate what the hog could not."""
    limit_before = resource.getrlimit(resource.RLIMIT_AS)
    done = run(MEMORY_HOG)
    assert "MemoryError" in done.text("stderr")[-1]
    assert resource.getrlimit(resource.RLIMIT_AS) == limit_before
    chunk = bytearray(LIMITS.max_memory + 64 * 1024 * 1024)
    assert len(chunk) > LIMITS.max_memory


# --- output --------------------------------------------------------------------------------


def test_output_arrives_line_by_line_while_the_script_runs(run, workdir):
    """The script waits until its first line has been reported before it goes on.

    If output were buffered until exit, the script would wait for ever and hit the time limit.
    """
    flag = workdir / "seen"
    script = f"""
import os, time
print("first line")
for _ in range(100):
    if os.path.exists({str(flag)!r}):
        print("the platform saw it")
        break
    time.sleep(0.1)
else:
    print("never seen")
"""
    lines: list[tuple[str, str]] = []

    def on_output(stream: str, line: str) -> None:
        lines.append((stream, line))
        if line == "first line":
            flag.touch()

    result = run_script(
        script, "start", DOCUMENT, workdir, env=SCRIPT_ENV, limits=LIMITS, on_output=on_output
    )
    assert not result.timed_out, lines
    assert lines == [("stdout", "first line"), ("stdout", "the platform saw it")]


@pytest.mark.security
def test_oversized_output_is_truncated_with_a_marker(run):
    line = "x" * 99
    script = f"for i in range(10_000):\n    print('%06d' % i, {line!r})\nprint('the end')\n"
    done = run(script)  # 10,000 lines of 107 bytes: about 1 MB
    assert done.result.exit_code == 0
    assert done.result.ok
    assert done.result.truncated
    kept, marker = done.lines[:-1], done.lines[-1]
    assert marker == ("stderr", TRUNCATED.format(LIMITS.max_output))
    assert TRUNCATED.format(LIMITS.max_output) not in [text for _s, text in kept]
    assert kept, "the beginning of the output is kept"
    assert kept[0] == ("stdout", f"000000 {line}")
    assert sum(len(text.encode()) + 1 for _s, text in kept) <= LIMITS.max_output
    assert ("stdout", "the end") not in done.lines
    # the numbered lines kept are the first ones, in order
    assert [text[:6] for _s, text in kept] == [f"{i:06d}" for i in range(len(kept))]


def test_a_long_line_without_newline_is_still_bounded(run):
    done = run("import sys\nsys.stdout.write('y' * 1_000_000)\n")
    assert done.result.ok
    assert done.result.truncated
    assert done.lines == [("stderr", TRUNCATED.format(LIMITS.max_output))]


# --- time limit and process groups ---------------------------------------------------------

SLEEPER_WITH_CHILD = """
import os, subprocess, time
child = subprocess.Popen(["sleep", "60"])
print("script", os.getpid())
print("child", child.pid)
time.sleep(60)
print("woke up")
"""


@pytest.mark.security
def test_timeout_kills_the_whole_process_group(run):
    done = run(SLEEPER_WITH_CHILD)
    assert done.result.timed_out
    assert not done.result.ok
    assert done.result.signal == signal.SIGKILL
    assert "exceeded its time limit and was killed" in done.result.describe("start")
    assert "woke up" not in done.text()
    pids = done.pids("script") + done.pids("child")
    assert len(pids) == 2, done.lines
    assert survivors(pids) == []


@pytest.mark.security
@needs_root
def test_fork_bomb_hits_the_process_limit_and_leaves_nothing_behind(run):
    # Bounded whatever the limits do: at most 2,000 forks, each child gone after 20 s.
    script = """
import os, time
children = 0
failure = None
for _ in range(2000):
    try:
        pid = os.fork()
    except OSError as exc:
        if failure is None:
            failure = exc
            print("fork failed after", children, "children:", type(exc).__name__)
        time.sleep(0.05)  # a bomb does not give up: it keeps trying
        continue
    if pid == 0:
        time.sleep(20)
        os._exit(0)
    children += 1
    print("child", pid)
print("the loop ended with", children, "children")
time.sleep(20)
"""
    done = run(script)
    children = done.pids("child")
    assert done.result.timed_out, done.lines[-3:]
    failed = [text for text in done.text() if text.startswith("fork failed after")]
    assert len(failed) == 1, done.lines[-3:]
    # another process of nobody's may end meanwhile: the bomb's retries can take its slot
    before_failure = int(failed[0].split()[3])
    assert failed[0] == f"fork failed after {before_failure} children: BlockingIOError"
    assert 0 < before_failure <= len(children) < run.limits.max_processes
    assert survivors(children) == []


@pytest.mark.security
def test_a_daemon_holding_the_pipes_does_not_hold_the_run(run, reaper):
    script = """
import os, subprocess, sys
daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                          start_new_session=True)
print("daemon", daemon.pid)
print("started")
"""
    done = run(script)
    assert done.result.ok, done.lines
    # not held until the time limit, nor until the daemon ends (it sleeps 30 s): it is alive
    assert not done.result.timed_out
    [daemon] = done.pids("daemon")
    assert ("stdout", "started") in done.lines
    assert alive(daemon), "a daemon in its own session outlives start"


# --- isolation -------------------------------------------------------------------------------


@needs_root
def test_runs_as_nobody_without_root_groups(run):
    done = run("import os\nprint('ids', os.getuid(), os.geteuid(), os.getgid(), os.getgroups())\n")
    nobody = pwd.getpwnam("nobody")
    assert done.result.ok, done.lines
    assert done.lines == [
        ("stdout", f"ids {nobody.pw_uid} {nobody.pw_uid} {nobody.pw_gid} []"),
    ]
    assert nobody.pw_uid != 0


def test_a_script_runs_as_its_own_main_with_the_limits_and_no_site_packages(run, workdir):
    """The launcher runs a Python script in its own interpreter as ``python -I -S -u SCRIPT
    COMMAND`` would, after setting the limits: nothing of the launcher or the platform shows."""
    done = run(
        "import importlib.util, os, resource, sys\n"
        "print('main', __name__, os.path.basename(__file__), sys.argv[1:])\n"
        "print('path0', sys.path[0])\n"
        "print('limits', *(resource.getrlimit(getattr(resource, 'RLIMIT_' + name))[0]"
        " for name in ('AS', 'CPU', 'CORE')))\n"
        "print('flags', sys.flags.isolated, sys.flags.no_site)\n"
        "print('importable', [m for m in ('bigdata_paas', 'sqlalchemy', 'celery')"
        " if importlib.util.find_spec(m)])\n",
        command="status",
    )
    assert done.result.ok, done.lines
    limits = run.limits
    assert done.lines == [
        ("stdout", "main __main__ orquestrator ['status']"),
        ("stdout", f"path0 {workdir}"),
        ("stdout", f"limits {limits.max_memory} {int(limits.timeout) + 5} 0"),
        ("stdout", "flags 1 1"),
        ("stdout", "importable []"),
    ]


def test_environment_is_the_documented_one(run, workdir):
    script = """
import json, os, stat
info = os.stat(os.environ["PAAS_INSTANCE_FILE"])
print(json.dumps({"env": dict(os.environ), "cwd": os.getcwd(),
                  "instance": json.load(open(os.environ["PAAS_INSTANCE_FILE"])),
                  "mode": oct(stat.S_IMODE(info.st_mode)),
                  "workdir_mode": oct(stat.S_IMODE(os.stat(".").st_mode))}))
"""
    done = run(script)
    assert done.result.ok, done.lines
    seen = json.loads(done.text("stdout")[0])
    env = seen["env"]
    assert set(env) <= DOCUMENTED, sorted(set(env) - DOCUMENTED)
    assert env["PATH"] == SAFE_PATH
    assert env["HOME"] == env["PAAS_WORKDIR"] == str(workdir) == seen["cwd"]
    assert {k: env[k] for k in SCRIPT_ENV} == SCRIPT_ENV
    assert seen["instance"] == DOCUMENT
    assert seen["mode"] == "0o600"
    assert seen["workdir_mode"] == "0o700"


SECRETS = {
    "PAAS_DATABASE_URL": "postgresql://paas:db-s3cret-4471@127.0.0.1/paas",
    "PAAS_BROKER_URL": "amqp://paas:broker-s3cret-9982@127.0.0.1//",
    "PAAS_ADMIN_TOKEN": "admin-token-s3cret-5563",
    "AWS_SECRET_ACCESS_KEY": "aws-s3cret-1208",
    "PGPASSWORD": "pg-s3cret-3321",
}

PROBE = """
import glob, json, os
found = {"env": dict(os.environ)}
targets = ["/proc/1/environ", "/proc/self/environ", f"/proc/{os.getppid()}/environ",
           DATABASE, "/root/.bash_history", "/root/.profile", "/root/.bashrc"]
targets += sorted(glob.glob("/root/*")) + sorted(glob.glob("/root/.*"))
for path in targets:
    try:
        with open(path, "rb") as f:
            found[path] = f.read(100_000).decode("utf-8", "replace")
    except OSError as exc:
        found[path] = "denied: " + type(exc).__name__
try:
    found["/root"] = os.listdir("/root")
except OSError as exc:
    found["/root"] = "denied: " + type(exc).__name__
for key, value in found.items():
    print(key, "=>", json.dumps(value))
"""


@pytest.mark.security
@needs_root
def test_secrets_probe_finds_nothing(run, monkeypatch, tmp_path):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    # the platform's database: in a root-only directory, as the data dir is
    database = tmp_path / "var" / "paas.sqlite3"
    database.parent.mkdir()
    os.chmod(database.parent, 0o700)
    database.write_text("the database " + SECRETS["PAAS_ADMIN_TOKEN"])
    os.chmod(database, 0o600)
    done = run(PROBE.replace("DATABASE", repr(str(database)), 1))
    assert done.result.ok, done.lines[-5:]
    assert not done.result.truncated
    output = "\n".join(done.text())
    for name, value in SECRETS.items():
        assert value not in output, f"{name} leaked"
    probed = {
        line.split(" => ", 1)[0]: json.loads(line.split(" => ", 1)[1]) for line in done.text()
    }
    assert set(probed["env"]) <= DOCUMENTED
    assert not {"PAAS_DATABASE_URL", "PAAS_BROKER_URL", "PAAS_ADMIN_TOKEN"} & set(probed["env"])
    # what it could read is its own environment; the caller's is out of reach
    assert probed[str(database)].startswith("denied")
    assert probed[f"/proc/{os.getpid()}/environ"].startswith("denied")
    assert probed["/proc/1/environ"].startswith("denied")
    own = dict(
        item.split("=", 1) for item in probed["/proc/self/environ"].split("\0") if "=" in item
    )
    assert set(own) <= DOCUMENTED
    if not stat.S_IMODE(os.stat("/root").st_mode) & 0o005:
        assert probed["/root"].startswith("denied")


def test_a_launcher_waits_ahead_of_the_next_command_and_ends_without_one():
    """A command takes the launcher that waits and leaves the next one waiting; a launcher
    whose worker goes away (its stdin closes) runs nothing and ends."""
    launchers = Launchers()
    taken = launchers.take(sys.executable)  # none waited: a new one
    launchers.refill(sys.executable)
    waiting = launchers.waiting[sys.executable]
    assert waiting is not taken and waiting.poll() is None
    launchers.refill(sys.executable)  # one waits already
    assert launchers.waiting[sys.executable] is waiting
    assert launchers.take(sys.executable) is waiting
    assert sys.executable not in launchers.waiting
    launchers.refill(sys.executable)
    for launcher in (taken, waiting, launchers.waiting[sys.executable]):
        assert launcher.stdin is not None and launcher.stdout is not None
        launcher.stdin.close()
        assert launcher.wait(timeout=30) == 0
        assert launcher.stdout.read() == b""
        launcher.stdout.close()
        launcher.stderr.close()
