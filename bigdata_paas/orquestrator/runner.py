"""Run one orquestrator command as a supervised subprocess.

The script never sees the platform's environment: it gets a fixed PATH, its
private working directory as HOME, and the instance's coordinates. It runs in
its own process group (so a timeout kills everything it started), under
resource limits, and as ``nobody`` when the worker runs as root.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pwd
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bigdata_paas.unprivileged import unprivileged_user

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
#: seconds to keep reading after the script exits (its daemons may keep the pipes)
DRAIN_AFTER_EXIT = 0.5
TRUNCATED = "[output truncated: limit of {} bytes reached]"


@dataclass(frozen=True)
class ScriptLimits:
    timeout: float = 600.0
    max_output: int = 1_000_000
    max_memory: int = 1024 * 1024 * 1024
    max_processes: int = 256
    max_file_size: int = 1024 * 1024 * 1024


@dataclass
class RunResult:
    exit_code: int | None
    timed_out: bool = False
    signal: int | None = None
    truncated: bool = False
    tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def describe(self, command: str) -> str:
        """Say how the command ended, in one sentence."""
        if self.timed_out:
            text = f"orquestrator {command} exceeded its time limit and was killed"
        elif self.signal:
            text = f"orquestrator {command} was killed by signal {self.signal}"
        else:
            text = f"orquestrator {command} exited with {self.exit_code}"
        if self.tail:
            text += "; last output: " + " | ".join(self.tail[-5:])
        return text


#: the launcher a script runs through (see its docstring)
LAUNCHER = Path(__file__).with_name("launch.py")


def reachable_workdir(workdir: Path) -> Path:
    """A work dir the unprivileged user can reach: ``workdir``, or a stand-in under /var/tmp.

    Test and temp directories are often inside a 0700 parent that ``nobody``
    cannot traverse; the stand-in is derived from the path, so ``stop`` finds
    what ``start`` left.
    """
    workdir.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir.parent, 0o711)  # traversable to each instance's own dir, not listable
    parent = workdir.resolve().parent
    if all(os.stat(p).st_mode & 0o001 for p in (parent, *parent.parents)):
        return workdir
    digest = hashlib.sha256(str(parent).encode()).hexdigest()[:16]
    base = Path("/var/tmp/bigdata-paas-work")
    base.mkdir(mode=0o711, exist_ok=True)
    os.chmod(base, 0o711)
    return base / digest / workdir.name


def prepare_workdir(workdir: Path, script: str, document: dict) -> tuple[Path, Path]:
    """Write the script and the instance file into the private working directory."""
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o700)
    script_path = workdir / "orquestrator"
    script_path.write_text(script, encoding="utf-8")
    os.chmod(script_path, 0o700)
    instance_file = workdir / "instance.json"
    instance_file.write_text(json.dumps(document, indent=2, sort_keys=True), encoding="utf-8")
    os.chmod(instance_file, 0o600)
    return script_path, instance_file


@functools.cache
def python_for(runner: pwd.struct_passwd | None) -> str:
    """The worker's interpreter, or the system's when the script's user cannot run it.

    A worker started from a virtualenv under /root runs an interpreter that
    ``nobody`` may not execute; the system Python runs the same stdlib scripts.
    """
    candidates = [sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"]
    if runner is None:
        return sys.executable
    for candidate in candidates:
        if not os.path.exists(candidate):
            continue
        try:
            probe = subprocess.run(
                [candidate, "-I", "-S", "-c", "pass"],
                user=runner.pw_uid,
                group=runner.pw_gid,
                extra_groups=[],
                capture_output=True,
                check=False,
                cwd="/",
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return candidate
    raise RuntimeError("no Python interpreter is executable by the unprivileged user")


#: the environment a launcher starts in; each job's environment replaces it
BASE_ENV = {"PATH": SAFE_PATH, "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}


class Launchers:
    """One launcher (launch.py) started ahead of the next command, per interpreter.

    A command takes the waiting launcher and, once it has ended, starts the next one for the
    command after it, so a command does not wait for an interpreter to start (15 ms on this
    kind of machine), nor for the next one to be spawned. A launcher that waits owns nothing
    and runs nothing; it ends when its worker does (its stdin closes).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting: dict[str, subprocess.Popen] = {}

    def take(self, python: str) -> subprocess.Popen:
        """The launcher waiting for ``python`` (or a new one)."""
        with self.lock:
            launcher = self.waiting.pop(python, None)
        if launcher is None or launcher.poll() is not None:
            launcher = self._start(python)
        return launcher

    def refill(self, python: str) -> None:
        """Have a launcher waiting for ``python``'s next command."""
        with self.lock:
            if python in self.waiting and self.waiting[python].poll() is None:
                return
            self.waiting[python] = self._start(python)

    @staticmethod
    def _start(python: str) -> subprocess.Popen:
        # No preexec_fn and no user switch: the child is a vfork, not a copy of the worker
        # (10 ms less per command); the launcher sets the limits and drops to the user.
        return subprocess.Popen(
            [python, "-I", "-S", "-u", str(LAUNCHER)],
            cwd="/",
            env=BASE_ENV,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )

    def forget(self) -> None:
        """In a forked child: the parent's launchers are the parent's."""
        self.lock = threading.Lock()
        self.waiting = {}


LAUNCHERS = Launchers()
os.register_at_fork(after_in_child=LAUNCHERS.forget)


def job_for(
    workdir: Path,
    environment: dict[str, str],
    script_path: Path,
    command: str,
    limits: ScriptLimits,
    runner: pwd.struct_passwd | None,
) -> bytes:
    """The launcher's job: one JSON line."""
    job = {
        "cwd": str(workdir),
        "env": environment,
        "cpu": int(limits.timeout) + 5,
        "memory": limits.max_memory,
        "fsize": limits.max_file_size,
        "nproc": limits.max_processes,
        "uid": runner.pw_uid if runner else -1,
        "gid": runner.pw_gid if runner else -1,
        "script": str(script_path),
        "command": command,
    }
    return json.dumps(job).encode() + b"\n"


def run_script(
    script: str,
    command: str,
    document: dict,
    workdir: Path,
    *,
    env: dict[str, str],
    limits: ScriptLimits,
    on_output: Callable[[str, str], None],
    on_tick: Callable[[], None] | None = None,
    files: dict[str, object] | None = None,
) -> RunResult:
    """Run ``script command`` in ``workdir``; stream each output line to ``on_output``.

    ``on_tick`` is called about every 0.2 s while the script runs (heartbeats). ``files``
    (environment variable -> JSON content) are written beside the instance file, each path
    in its variable (a resize's previous spec and changed nodes).
    """
    runner = unprivileged_user()
    if runner is not None:
        workdir = reachable_workdir(workdir)
    script_path, instance_file = prepare_workdir(workdir, script, document)
    written = {}
    for variable, content in (files or {}).items():
        path = workdir / f"{variable.lower()}.json"
        path.write_text(json.dumps(content, indent=2, sort_keys=True), encoding="utf-8")
        os.chmod(path, 0o600)
        written[variable] = path
    if runner is not None:
        for path in (workdir, script_path, instance_file, *written.values()):
            os.chown(path, runner.pw_uid, runner.pw_gid)
    environment = {
        "PATH": SAFE_PATH,
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PAAS_INSTANCE_FILE": str(instance_file),
        "PAAS_WORKDIR": str(workdir),
        **{variable: str(path) for variable, path in written.items()},
        **env,
    }
    python = python_for(runner)
    process = LAUNCHERS.take(python)
    stdin = process.stdin
    if stdin is None:
        raise ValueError("a launcher is started with a stdin pipe")
    try:
        stdin.write(job_for(workdir, environment, script_path, command, limits, runner))
        stdin.close()
    except OSError as exc:  # it died while waiting: its stderr says why
        _kill_group(process)
        raise RuntimeError(f"the orquestrator launcher is gone: {exc}") from exc
    result = RunResult(exit_code=None)
    try:
        _pump(process, limits, result, on_output, on_tick or (lambda: None))
    finally:
        LAUNCHERS.refill(python)
    return result


def _pump(
    process: subprocess.Popen,
    limits: ScriptLimits,
    result: RunResult,
    on_output: Callable[[str, str], None],
    on_tick: Callable[[], None],
) -> None:
    deadline = time.monotonic() + limits.timeout
    selector = selectors.DefaultSelector()
    pending = {"stdout": b"", "stderr": b""}
    stdout, stderr = process.stdout, process.stderr
    if stdout is None or stderr is None:
        raise ValueError("_pump reads a process started with stdout and stderr pipes")
    selector.register(stdout, selectors.EVENT_READ, "stdout")
    selector.register(stderr, selectors.EVENT_READ, "stderr")
    kept = 0

    def emit(stream: str, raw: bytes) -> None:
        nonlocal kept
        if result.truncated:
            return
        kept += len(raw) + 1
        if kept > limits.max_output:
            result.truncated = True
            on_output("stderr", TRUNCATED.format(limits.max_output))
            return
        line = raw.decode("utf-8", "replace").rstrip("\r")
        result.tail = [*result.tail, line][-20:]
        on_output(stream, line)

    exited_at = None
    while selector.get_map():
        on_tick()
        now = time.monotonic()
        remaining = deadline - now
        if remaining <= 0:
            result.timed_out = True
            break
        if exited_at is None and process.poll() is not None:
            exited_at = now
        # A daemon the script started may hold the pipes open for ever: once the
        # script itself has exited, read what is there for a moment, then stop.
        if exited_at is not None and now - exited_at > DRAIN_AFTER_EXIT:
            break
        for key, _ in selector.select(timeout=min(remaining, 0.2)):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                selector.unregister(key.fileobj)
                if pending[key.data]:
                    emit(key.data, pending[key.data])
                    pending[key.data] = b""
                continue
            lines = (pending[key.data] + chunk).split(b"\n")
            pending[key.data] = lines.pop()
            if len(pending[key.data]) > 65536:
                lines.append(pending[key.data])
                pending[key.data] = b""
            for line in lines:
                emit(key.data, line)
    selector.close()
    for stream, rest in pending.items():
        if rest:
            emit(stream, rest)
    if result.timed_out:
        _kill_group(process)
    else:
        # the script closed its output but may still run: keep ticking until it ends
        while process.poll() is None and time.monotonic() < deadline:
            on_tick()
            try:
                process.wait(timeout=min(max(deadline - time.monotonic(), 0.01), 1.0))
            except subprocess.TimeoutExpired:
                pass
        if process.poll() is None:
            result.timed_out = True
            _kill_group(process)
    stdout.close()
    stderr.close()
    code = process.returncode
    if code is not None and code < 0:
        result.signal = -code
    result.exit_code = code


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
