"""The parent side of a render: fork the child, read its pipe under a deadline, reap it.

The render (compile, render, parse) runs in a forked child with an address-space limit, a
CPU-time limit, a wall-clock deadline enforced here (SIGKILL) and an output cap, so loops,
memory hogs and output bombs end as a ``TemplateError`` instead of a stuck worker. The parent
never unpickles anything: it reads a code frame and a JSON result, and always reaps the child.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import selectors
import signal
import time
import warnings
from typing import Any

from bigdata_paas.errors import TemplateError, Unavailable
from bigdata_paas.rendering import codecache
from bigdata_paas.rendering.child import child_main, memory_message
from bigdata_paas.rendering.sandbox import MB, RenderLimits


def _fork() -> int:
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a threaded process; the child only renders and
        # exits, never touching locks other threads may hold (see TemplateEnvironment.lexer).
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when the child exits (Linux 5.3+), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _reap(pid: int, pidfd: int | None = None, *, kill: bool) -> int | None:
    """Wait for the child (killing it first if asked); return its wait status.

    With a pidfd the parent sleeps until the child has exited instead of polling.
    """
    if kill:
        _kill(pid)
    grace = time.monotonic() + 2.0
    delay = 0.0005
    poller = None
    if pidfd is not None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
    while True:
        try:
            done, status = os.waitpid(pid, 0 if kill else os.WNOHANG)
        except ChildProcessError:
            return None  # someone else reaped it (a SIGCHLD handler); nothing to clean up
        if done:
            return status
        remaining = grace - time.monotonic()
        if remaining <= 0:
            # It closed the pipe but does not exit: do not let it linger.
            _kill(pid)
            kill = True
            continue
        if poller is not None:
            poller.poll(max(1, math.ceil(remaining * 1000)))
        else:
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def render_isolated(
    source: str, context: dict[str, Any], limits: RenderLimits, *, fmt: str | None
) -> Any:
    """Run the render in a forked child under limits; return its value or raise."""
    if not isinstance(source, str):
        raise TemplateError("template must be text")
    env, fingerprint = codecache.environment(limits)
    cache = codecache.CODE_CACHE
    key = codecache.cache_key(fingerprint, source)
    generated = cache.get(key)
    # How much generated code the child may send back: none when it has it already.
    code_limit = 0 if generated is not None else cache.max_entry_bytes
    # Escaped text can be several bytes per character; anything beyond this is not ours.
    max_bytes = 24 * limits.max_output + MB + codecache.FRAME_HEADER + code_limit
    rfd, wfd = os.pipe()
    try:
        pid = _fork()
    except OSError as exc:
        os.close(rfd)
        os.close(wfd)
        raise Unavailable(f"cannot start a template render process: {exc}") from None
    if pid == 0:
        child_main(wfd, env, source, generated, code_limit, context, fmt)
    os.close(wfd)

    deadline = time.monotonic() + limits.timeout
    chunks: list[bytes] = []
    received = 0
    timed_out = too_big = False
    finished = False
    status: int | None = None
    result: dict[str, Any] | None = None
    pidfd: int | None = None
    try:
        pidfd = open_pidfd(pid)
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
        # time limit), the child is killed; it is always reaped, so no zombie is left behind.
        try:
            status = _reap(pid, pidfd, kill=timed_out or too_big or not finished)
        finally:
            if pidfd is not None:
                os.close(pidfd)

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
