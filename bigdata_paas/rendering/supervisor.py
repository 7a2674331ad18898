"""The parent side of a render: have the zygote fork the child, read its pipe under a deadline.

The render (compile, render, parse) runs in a child forked by the render zygote
(``rendering.zygote``: one clean process per rendering process, started once) with an
address-space limit, a CPU-time limit, a wall-clock deadline enforced here (SIGKILL, by the
zygote on request) and an output cap, so loops, memory hogs and output bombs end as a
``TemplateError`` instead of a stuck worker. The parent never unpickles anything: it reads a
code frame and a JSON result, and the zygote always reaps the child and reports how it ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bigdata_paas.errors import TemplateError, Unavailable
from bigdata_paas.rendering import codecache, zygote
from bigdata_paas.rendering.child import memory_message
from bigdata_paas.rendering.sandbox import MB, RenderLimits

#: How long the zygote may take to report a killed child's status.
REAP_GRACE = 2.0
#: How long a new zygote may take to start (an interpreter and the renderer's imports).
STARTUP_TIMEOUT = 60.0
_ROOT = str(Path(__file__).resolve().parents[2])
_START = (
    "import sys; sys.path.insert(0, sys.argv[2]); "
    "from bigdata_paas.rendering.zygote import main; main(int(sys.argv[1]))"
)


class _ZygoteClient:
    """This process's render zygote (``rendering.zygote``): started on first use, and again
    when it died or this process is a fork of the one that started it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0  # the process the zygote belongs to
        self._process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None

    def _spawn(self) -> socket.socket:
        self.forget()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # A fresh interpreter from a clean environment: none of this process's memory,
            # variables or descriptors (database, broker) is in it for a template to reach.
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-c", _START, str(theirs.fileno()), _ROOT],
                pass_fds=(theirs.fileno(),),
                env={"PATH": os.environ.get("PATH", os.defpath)},
                cwd="/",
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        # Its start-up (an interpreter, the imports) must not count against a render's
        # deadline: wait for it here.
        ours.settimeout(STARTUP_TIMEOUT)
        try:
            ready = ours.recv(len(zygote.READY))
        except OSError:
            ready = b""
        if ready != zygote.READY:
            ours.close()
            self._process.kill()
            self._process.wait()
            raise OSError("the render zygote did not start")
        ours.settimeout(None)
        self._sock, self._pid = ours, os.getpid()
        return ours

    def forget(self) -> None:
        """Drop the zygote (it ends when its socket closes) and reap it if it has ended."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        if self._process is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self._process.wait(timeout=0.5 if self._process.poll() is None else 0)
        self._sock = self._process = None
        self._pid = 0

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's zygote is not ours; close our copy of its socket."""
        self._lock = threading.Lock()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = self._process = None
        self._pid = 0

    def start(self, limits: RenderLimits, wfd: int, payload: bytes) -> socket.socket:
        """Have the zygote fork a render child writing to ``wfd``; return its control socket."""
        message = pickle.dumps(limits)
        for attempt in (1, 2):
            args_r, args_w = os.pipe()
            control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            sock = None
            try:
                with self._lock:
                    sock = self._sock
                    if sock is None or self._pid != os.getpid() or self._dead():
                        sock = self._spawn()
                    socket.send_fds(sock, [message], [wfd, args_r, theirs.fileno()])
            except OSError as exc:
                control.close()
                os.close(args_w)
                if attempt == 2:
                    raise Unavailable(f"cannot start a template render process: {exc}") from None
                with self._lock:
                    if sock is not None and sock is self._sock:
                        self.forget()  # it died: the next attempt starts another
                continue
            finally:
                os.close(args_r)
                theirs.close()
            try:
                with os.fdopen(args_w, "wb") as pipe:
                    pipe.write(zygote.LENGTH.pack(len(payload)))
                    pipe.write(payload)
            except BrokenPipeError:
                pass  # the child is gone already: its status tells why
            except BaseException:
                control.close()  # the zygote kills the child
                raise
            return control
        raise AssertionError("unreachable")

    def _dead(self) -> bool:
        return self._process is None or self._process.poll() is not None


_ZYGOTES = _ZygoteClient()
os.register_at_fork(after_in_child=_ZYGOTES.forget_after_fork)


def _status(control: socket.socket, *, kill: bool) -> int | None:
    """Wait for the child's wait status from the zygote (killing the child first if asked).

    None when the zygote does not report one within ``REAP_GRACE`` s (it died).
    """
    try:
        if kill:
            with contextlib.suppress(OSError):
                control.sendall(b"k")
        control.settimeout(REAP_GRACE)
        data = b""
        try:
            while len(data) < zygote.STATUS.size:
                more = control.recv(zygote.STATUS.size - len(data))
                if not more:
                    return None
                data += more
        except (TimeoutError, OSError):
            return None
        return zygote.STATUS.unpack(data)[0]
    finally:
        control.close()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def render_isolated(
    source: str, context: dict[str, Any], limits: RenderLimits, *, fmt: str | None
) -> Any:
    """Run the render in a child forked by the zygote under limits; return its value or raise."""
    if not isinstance(source, str):
        raise TemplateError("template must be text")
    _env, fingerprint = codecache.environment(limits)
    cache = codecache.CODE_CACHE
    key = codecache.cache_key(fingerprint, source)
    generated = cache.get(key)
    # How much generated code the child may send back: none when it has it already.
    code_limit = 0 if generated is not None else cache.max_entry_bytes
    # Escaped text can be several bytes per character; anything beyond this is not ours.
    max_bytes = 24 * limits.max_output + MB + codecache.FRAME_HEADER + code_limit
    payload = pickle.dumps((source, generated, code_limit, context, fmt))
    rfd, wfd = os.pipe()
    try:
        control = _ZYGOTES.start(limits, wfd, payload)
    except BaseException:
        os.close(rfd)
        raise
    finally:
        os.close(wfd)

    deadline = time.monotonic() + limits.timeout
    chunks: list[bytes] = []
    received = 0
    timed_out = too_big = False
    finished = False
    status: int | None = None
    result: dict[str, Any] | None = None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(rfd, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                if not selector.select(remaining):
                    continue
                data = os.read(rfd, 1 << 16)
                if not data:
                    break
                received += len(data)
                if received > max_bytes:
                    too_big = True
                    break
                chunks.append(data)
        finished = True
        if timed_out or too_big:
            # The code frame, written before the render started, may still be complete.
            head = _head(chunks, codecache.FRAME_HEADER + code_limit)
            codecache.keep_code(cache, key, head, code_limit)
        else:
            output = b"".join(chunks)
            chunks.clear()
            result = _decode(codecache.keep_code(cache, key, output, code_limit))
            del output
    finally:
        os.close(rfd)
        # On a timeout, an oversized result or an exception in this thread (a worker's soft
        # time limit), the child is killed; the zygote always reaps it and reports how it
        # ended, so no zombie is left behind.
        status = _status(control, kill=timed_out or too_big or not finished)

    if timed_out:
        raise TemplateError(f"template took longer than {limits.timeout} s to render")
    if too_big:
        raise TemplateError(f"rendered template is larger than {limits.max_output} characters")
    if result is None:
        raise _child_failure(status, limits)
    if "error" in result:
        line = result.get("line")
        # A message may quote the template's own strings: keep it storable UTF-8 text.
        message = str(result["error"]).encode("utf-8", "backslashreplace").decode("utf-8")
        raise TemplateError(message, line=line if isinstance(line, int) else None)
    return result.get("ok")


def _head(chunks: list[bytes], size: int) -> bytes:
    """The first ``size`` bytes (or fewer) of the chunks, without joining all of them."""
    head = bytearray()
    for chunk in chunks:
        if len(head) >= size:
            break
        head += chunk
    return bytes(head)


def _decode(data: bytes | None) -> dict[str, Any] | None:
    if not data:
        return None
    try:
        result = json.loads(data.decode("utf-8", "surrogatepass"))
    except RecursionError:
        raise TemplateError("rendered spec is nested too deeply") from None
    except ValueError:
        return None
    return result if isinstance(result, dict) else None


def _child_failure(status: int | None, limits: RenderLimits) -> TemplateError:
    """Explain a child that died without writing a result."""
    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == getattr(signal, "SIGXCPU", None):
            return TemplateError(f"template took longer than {limits.timeout} s to render")
        name = _signal_name(sig)
        if sig in (signal.SIGKILL, signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT):
            return TemplateError(f"{memory_message(limits)} (render process killed by {name})")
        return TemplateError(f"template rendering failed (render process killed by {name})")
    code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None
    return TemplateError(f"template rendering failed (render process exited with status {code})")
