"""The parent side of a render: a pool of renderers per template, each render under a deadline.

A render (compile, render, parse) runs in a renderer (``rendering.child``) forked by the
render zygote (``rendering.zygote``: one clean process per rendering process, started once)
with an address-space limit, a CPU-time limit, a wall-clock deadline enforced here (SIGKILL,
by the zygote on request) and an output cap, so loops, memory hogs and output bombs end as a
``TemplateError`` instead of a stuck worker. The parent never unpickles anything: it reads a
code frame, a reply header and a JSON result, and the zygote reaps every renderer and reports
how it ended.

A renderer serves successive renders of one template, so a render of a template rendered a
moment ago costs a request and a reply on two pipes, not a fork, a ``compile()`` and an exit.
What keeps that as isolated as a fresh process per render:

* A renderer never serves another template. The pool's key is the limits, the code-cache key
  (the template source and the environment's settings) and a digest of the generated code the
  renderer compiled, so a template can only ever meet its own later renders; and under the
  ``ImmutableSandboxedEnvironment`` it cannot change anything but its own render's locals (the
  template object, its globals and its context are made anew for every render) and the state
  of ``random`` (``|random``, ``lipsum``), which the renderer seeds afresh before each render
  as the fork did for the first.
* Every render has the limits of a fresh process: the wall deadline and the output cap
  enforced here; a CPU budget (the renderer raises its soft RLIMIT_CPU to the CPU already used
  plus the budget before each render, under a hard cap for its life); ``max_memory`` on top of
  the address space in use (soft RLIMIT_AS, under a hard cap set once at its start).
* A renderer is thrown away (killed by the zygote, never reused) after any error result,
  timeout, oversized output, missing or malformed reply, or exception in the caller's thread;
  after ``MAX_RENDERS`` renders; when it says it should not serve another (its address space
  grew more than ``child.MAX_GROWTH`` since it started, or its lifetime CPU is nearly spent);
  when it has been idle ``IDLE_SECONDS``; and, least recently used first, when the pool is
  full.
* The zygote, this process's descriptors and its secrets are exactly as isolated as with a
  fork per render. A forked process (a gunicorn or Celery pool child) closes its copies of its
  parent's renderers and starts its own; renderers die with their zygote, and leave when this
  process closes their request pipes (or dies).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from bigdata_paas.errors import TemplateError, Unavailable
from bigdata_paas.rendering import codecache, zygote
from bigdata_paas.rendering.child import REPLY, REQUEST_LENGTH, memory_message, write_all
from bigdata_paas.rendering.sandbox import MB, RenderLimits

#: How long the zygote may take to report a killed renderer's status.
REAP_GRACE = 2.0
#: How long a new zygote may take to start (an interpreter and the renderer's imports).
STARTUP_TIMEOUT = 60.0
#: Idle renderers kept for one template, and in all; beyond either, the least recently used
#: is closed.
MAX_IDLE_PER_TEMPLATE = 16
MAX_IDLE = 32
#: Renders a renderer serves before it is replaced by a fresh one.
MAX_RENDERS = 256
#: An idle renderer is closed after this long (it would leave by itself after
#: ``child.IDLE_EXIT``, a little later: no request is ever sent to one that is leaving).
IDLE_SECONDS = 50.0
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

    def fork_renderer(self, limits: RenderLimits) -> tuple[int, int, socket.socket]:
        """Have the zygote fork a renderer; return (result pipe, request pipe, control)."""
        message = pickle.dumps(limits)
        for attempt in (1, 2):
            results, results_w = os.pipe()
            requests_r, requests = os.pipe()
            control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            sock = None
            try:
                with self._lock:
                    sock = self._sock
                    if sock is None or self._pid != os.getpid() or self._dead():
                        sock = self._spawn()
                    socket.send_fds(sock, [message], [results_w, requests_r, theirs.fileno()])
            except BaseException as exc:
                control.close()
                os.close(results)
                os.close(requests)
                if not isinstance(exc, OSError):
                    raise
                if attempt == 2:
                    raise Unavailable(f"cannot start a template render process: {exc}") from None
                with self._lock:
                    if sock is not None and sock is self._sock:
                        self.forget()  # it died: the next attempt starts another
                continue
            finally:
                os.close(results_w)
                os.close(requests_r)
                theirs.close()
            return results, requests, control
        raise AssertionError("unreachable")

    def _dead(self) -> bool:
        return self._process is None or self._process.poll() is not None


class _Renderer:
    """This process's end of one renderer: its pipes and its control socket to the zygote."""

    def __init__(
        self, identity: Hashable, results: int, requests: int, control: socket.socket
    ) -> None:
        #: what it may render: (limits, code-cache key, the code it compiled: see _given_code)
        self.identity = identity
        self.results = results  # read end of the pipe it replies on
        self.requests = requests  # write end of the pipe it reads requests from
        self.control = control  # to the zygote: kill requests out, the wait status in
        #: its process id, from its first reply (0 before): for logs and tests only
        self.pid = 0
        #: renders it has served
        self.renders = 0
        self.idle_since = 0.0

    def alive(self) -> bool:
        """False when it died while idle (its pipe closed, its status or the zygote's end
        arrived): an idle renderer writes nothing, and the zygote writes only when it ends."""
        poller = select.poll()
        poller.register(self.results, select.POLLIN)
        poller.register(self.control, select.POLLIN)
        return not poller.poll(0)

    def close_requests(self) -> None:
        """Close the request pipe: the renderer leaves when it next reads."""
        if self.requests >= 0:
            with contextlib.suppress(OSError):
                os.close(self.requests)
            self.requests = -1

    def close(self, *, kill: bool = True) -> None:
        """Close this process's ends; with ``kill``, have the zygote kill the renderer first."""
        if kill and self.control.fileno() >= 0:
            with contextlib.suppress(OSError):
                self.control.send(b"k")
        self.close_requests()
        if self.results >= 0:
            with contextlib.suppress(OSError):
                os.close(self.results)
            self.results = -1
        with contextlib.suppress(OSError):
            self.control.close()


class RendererPool:
    """This process's renderers: the idle ones by identity, and every one it owns.

    Thread-safe: a renderer taken belongs to the taking thread until it is given back or
    discarded. ``idle_renderers()`` shows the idle ones (tests and debugging).
    """

    def __init__(self, zygotes: _ZygoteClient) -> None:
        self._zygotes = zygotes
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._idle: dict[Hashable, list[_Renderer]] = {}
        self._lru: OrderedDict[_Renderer, None] = OrderedDict()  # idle, oldest first
        self._live: set[_Renderer] = set()  # idle or rendering

    def take(self, identity: Hashable) -> _Renderer | None:
        """An idle, living renderer of this identity (the most recently used), or None."""
        if self._pid != os.getpid():
            self.forget_after_fork()  # a fork that ran no at-fork hook
        while True:
            with self._lock:
                leaving = self._expired(time.monotonic())
                stack = self._idle.get(identity)
                renderer = stack.pop() if stack else None
                if renderer is not None:
                    del self._lru[renderer]
                    if not stack:
                        del self._idle[identity]
            for old in leaving:
                self.discard(old)
            if renderer is None or renderer.alive():
                return renderer
            self.discard(renderer)

    def start(self, identity: Hashable, limits: RenderLimits) -> _Renderer:
        """A new renderer (forked by the zygote) for this identity, not yet in the pool."""
        results, requests, control = self._zygotes.fork_renderer(limits)
        renderer = _Renderer(identity, results, requests, control)
        with self._lock:
            self._live.add(renderer)
        return renderer

    def give_back(self, renderer: _Renderer) -> None:
        """Keep a renderer after a clean render; close whatever the bounds leave no room for."""
        renderer.idle_since = time.monotonic()
        with self._lock:
            stack = self._idle.setdefault(renderer.identity, [])
            stack.append(renderer)
            self._lru[renderer] = None
            leaving = self._expired(renderer.idle_since)
            if len(stack) > MAX_IDLE_PER_TEMPLATE:
                leaving.append(self._remove(stack[0]))
            while len(self._lru) > MAX_IDLE:
                leaving.append(self._remove(next(iter(self._lru))))
        for old in leaving:
            self.discard(old)

    def discard(self, renderer: _Renderer, *, kill: bool = True) -> None:
        """Never use this renderer again: have the zygote kill it, close our ends."""
        with self._lock:
            self._live.discard(renderer)
        renderer.close(kill=kill)

    def clear(self) -> None:
        """Close every idle renderer (tests, benchmarks)."""
        with self._lock:
            leaving = list(self._lru)
            self._idle.clear()
            self._lru.clear()
        for old in leaving:
            self.discard(old)

    def idle_renderers(self) -> list[_Renderer]:
        """The idle renderers, least recently used first."""
        with self._lock:
            return list(self._lru)

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's renderers are the parent's; close our copies."""
        self._lock = threading.Lock()
        for renderer in self._live:
            renderer.close(kill=False)
        self._live = set()
        self._idle = {}
        self._lru = OrderedDict()
        self._pid = os.getpid()

    def _expired(self, now: float) -> list[_Renderer]:
        """Take out the renderers idle longer than ``IDLE_SECONDS`` (the lock is held)."""
        expired = []
        while self._lru:
            oldest = next(iter(self._lru))
            if now - oldest.idle_since < IDLE_SECONDS:
                break
            expired.append(self._remove(oldest))
        return expired

    def _remove(self, renderer: _Renderer) -> _Renderer:
        """Take an idle renderer out of the pool (the lock is held)."""
        del self._lru[renderer]
        stack = self._idle[renderer.identity]
        stack.remove(renderer)
        if not stack:
            del self._idle[renderer.identity]
        return renderer


_ZYGOTES = _ZygoteClient()
#: This process's renderers (internal: ``idle_renderers()`` for tests, ``clear()``).
RENDERERS = RendererPool(_ZYGOTES)
os.register_at_fork(after_in_child=_ZYGOTES.forget_after_fork)
os.register_at_fork(after_in_child=RENDERERS.forget_after_fork)


def _status(control: socket.socket, *, kill: bool) -> int | None:
    """Wait for the renderer's wait status from the zygote (killing it first if asked).

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


def _given_code(code: str | bytes) -> tuple[str, bytes]:
    """Name generated code a renderer was given (or sent back): by its digest."""
    data = code.encode("utf-8", "surrogatepass") if isinstance(code, str) else code
    return ("given", hashlib.sha256(data).digest())


def _own_code(code_limit: int) -> tuple[str, int]:
    """Name the code of a renderer that generated its own and could not send it back (too
    big for ``code_limit``): a renderer asked for more could send it, so it is another."""
    return ("own", code_limit)


class _Reply:
    """What one render's reply was, as read from the result pipe under the deadline."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.frame_end: int | None = None  # end of the code frame, once its header is in
        self.end: int | None = None  # end of the reply, once its header is in
        self.pid = 0
        self.reusable = False
        self.timed_out = self.too_big = self.malformed = False

    @property
    def complete(self) -> bool:
        return self.end is not None and len(self.data) == self.end

    def frame(self) -> bytes | None:
        """The code frame, when all of it arrived."""
        if self.frame_end is None or len(self.data) < self.frame_end:
            return None
        return bytes(self.data[: self.frame_end])

    def result(self) -> bytes:
        return bytes(self.data[self.frame_end + REPLY.size :])  # type: ignore[operator]

    def add(self, chunk: bytes, code_limit: int, max_bytes: int) -> bool:
        """Take a chunk; True when the reply is complete, too big or malformed."""
        self.data += chunk
        if len(self.data) > max_bytes:
            self.too_big = True
            return True
        if self.frame_end is None and len(self.data) >= codecache.FRAME_HEADER:
            size = int.from_bytes(self.data[: codecache.FRAME_HEADER], "big")
            if size > code_limit:  # code this render did not ask for
                self.malformed = True
                return True
            self.frame_end = codecache.FRAME_HEADER + size
        if (
            self.end is None
            and self.frame_end is not None
            and len(self.data) >= self.frame_end + REPLY.size
        ):
            self.pid, reusable, length = REPLY.unpack_from(self.data, self.frame_end)
            self.reusable = reusable == 1
            self.end = self.frame_end + REPLY.size + length
            if self.end > max_bytes:
                self.too_big = True
                return True
        if self.end is not None and len(self.data) >= self.end:
            self.malformed = len(self.data) > self.end  # nothing may follow a reply
            return True
        return False


def _exchange(renderer: _Renderer, request: bytes, limits: RenderLimits, code_limit: int) -> _Reply:
    """Send one request and read the reply until complete, the deadline or the output cap."""
    try:
        write_all(renderer.requests, REQUEST_LENGTH.pack(len(request)) + request)
    except BrokenPipeError:
        pass  # the renderer is gone already: the closed result pipe and its status tell why
    deadline = time.monotonic() + limits.timeout
    # Escaped text can be several bytes per character; anything beyond this is not ours.
    max_bytes = 24 * limits.max_output + MB + codecache.FRAME_HEADER + code_limit + REPLY.size
    reply = _Reply()
    poller = select.poll()
    poller.register(renderer.results, select.POLLIN)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            reply.timed_out = True
            return reply
        if not poller.poll(math.ceil(remaining * 1000)):
            continue
        data = os.read(renderer.results, 1 << 16)
        if not data or reply.add(data, code_limit, max_bytes):
            return reply


def render_isolated(
    source: str, context: dict[str, Any], limits: RenderLimits, *, fmt: str | None
) -> Any:
    """Render in a renderer of this template under limits; return the value or raise."""
    if not isinstance(source, str):
        raise TemplateError("template must be text")
    _env, fingerprint = codecache.environment(limits)
    cache = codecache.CODE_CACHE
    key = codecache.cache_key(fingerprint, source)
    generated = cache.get(key)
    # How much generated code a new renderer may send back: none when it is given the code.
    first_code_limit = 0 if generated is not None else cache.max_entry_bytes
    code = _given_code(generated) if generated is not None else _own_code(first_code_limit)
    identity = (limits, key, code)
    arguments = pickle.dumps((context, fmt))
    while True:
        renderer = RENDERERS.take(identity)
        if renderer is None:
            renderer = RENDERERS.start(identity, limits)
        if renderer.renders == 0:
            code_limit = first_code_limit
            template = (source, generated, code_limit)
        else:
            code_limit, template = 0, None
        reply: _Reply | None = None
        try:
            reply = _exchange(renderer, pickle.dumps(template) + arguments, limits, code_limit)
        finally:
            if reply is None:  # an exception in this thread (a worker's soft time limit)
                RENDERERS.discard(renderer)
        if renderer.renders and not reply.data and not reply.timed_out:
            # A reused renderer that died while idle never saw this render (a reply starts
            # with the code frame, written before any template code runs): a fresh one
            # renders it, exactly as if no renderer had been idle.
            RENDERERS.discard(renderer)
            continue
        return _outcome(renderer, reply, limits, cache, key, code_limit)


def _outcome(
    renderer: _Renderer,
    reply: _Reply,
    limits: RenderLimits,
    cache: codecache.CodeCache,
    key: bytes,
    code_limit: int,
) -> Any:
    """Keep the code the renderer sent, keep or end the renderer, return the value or raise."""
    frame = reply.frame()
    # The code frame, written before the render started, may be complete even when the
    # render was not.
    if (
        frame is not None
        and codecache.keep_code(cache, key, frame, code_limit) is not None
        and len(frame) > codecache.FRAME_HEADER
    ):
        # It compiled the code it sent: it may serve the later renders given that code.
        renderer.identity = (limits, key, _given_code(frame[codecache.FRAME_HEADER :]))
    result: dict[str, Any] | None = None
    if reply.complete and not (reply.too_big or reply.malformed):
        renderer.pid = reply.pid
        try:
            result = _decode(reply.result())
        except TemplateError:
            RENDERERS.discard(renderer)
            raise
    status: int | None = None
    if result is None:
        # On a timeout, an oversized or malformed reply the renderer is killed; else it has
        # ended, or ends as its request pipe closes: the zygote reaps it and says how.
        renderer.close_requests()
        status = _status(renderer.control, kill=reply.timed_out or reply.too_big or reply.malformed)
        RENDERERS.discard(renderer, kill=False)
    elif "error" in result or not reply.reusable or renderer.renders + 1 >= MAX_RENDERS:
        RENDERERS.discard(renderer)
    else:
        renderer.renders += 1
        RENDERERS.give_back(renderer)

    if reply.timed_out:
        raise TemplateError(f"template took longer than {limits.timeout} s to render")
    if reply.too_big:
        raise TemplateError(f"rendered template is larger than {limits.max_output} characters")
    if result is None:
        raise _child_failure(status, limits)
    if "error" in result:
        line = result.get("line")
        # A message may quote the template's own strings: keep it storable UTF-8 text.
        message = str(result["error"]).encode("utf-8", "backslashreplace").decode("utf-8")
        raise TemplateError(message, line=line if isinstance(line, int) else None)
    return result.get("ok")


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
    """Explain a renderer that died without writing a result."""
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
