"""What runs in a renderer: hard limits, then compile once, and per request render, parse, reply.

A renderer is a process the render zygote forks for one template (``rendering.zygote``). It
sets its limits, drops every descriptor but its two pipes, compiles the template on its first
request and keeps the code object; then it serves renders of that template only, one request
at a time, each under its own CPU and memory budget, until the parent closes the request pipe
or stops sending (``IDLE_EXIT``) or its own checks say it should not serve another render. It
leaves with ``os._exit``: it never returns into the zygote's code, never runs finalizers of
inherited objects and never touches a descriptor it did not keep.

Requests (parent -> renderer, request pipe): ``REQUEST_LENGTH``, then the pickled template
(``(source, generated, code_limit)`` in the first request, None in later ones) followed by the
pickled ``(context, fmt)``. Replies (renderer -> parent, result pipe): the code frame
(``rendering.codecache``: the freshly generated code, written before any template code runs,
else empty), then ``REPLY`` (the renderer's pid, whether it can serve another render, the
result's length) and the JSON result.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import math
import os
import pickle
import random
import resource
import select
import signal
import struct
from types import CodeType
from typing import Any, NoReturn

# Imported up front so a renderer never imports: an import lock held by another thread of the
# zygote at fork time would deadlock it (Jinja imports jinja2.debug lazily on errors).
import jinja2.compiler
import jinja2.debug  # noqa: F401
from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaTemplateError

from bigdata_paas.rendering import parsing
from bigdata_paas.rendering.codecache import EMPTY_FRAME, code_frame
from bigdata_paas.rendering.sandbox import (
    MB,
    TEMPLATE_FILENAME,
    LimitExceeded,
    RenderLimits,
    TemplateEnvironment,
)

_MAX_MESSAGE = 500
# Signals whose inherited handlers must not run in a renderer.
_RESET_SIGNALS = (
    "SIGINT",
    "SIGTERM",
    "SIGHUP",
    "SIGQUIT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGCHLD",
    "SIGALRM",
    "SIGXCPU",
    "SIGPIPE",
)

#: Requests are preceded by their length.
REQUEST_LENGTH = struct.Struct(">Q")
#: Each reply's header, after the code frame: pid, 1 if it can serve another render, length.
REPLY = struct.Struct(">iBQ")
#: A renderer sent no request for this long leaves by itself (the parent closes its idle
#: renderers sooner, ``supervisor.IDLE_SECONDS``, so it never sends to one that is leaving).
IDLE_EXIT = 60.0
#: CPU seconds a renderer may use over its life on top of one render's budget (its hard
#: RLIMIT_CPU); once a whole budget no longer fits under it, it serves no more renders.
LIFETIME_CPU = 30
#: Address space a renderer may keep beyond what it started with (its hard RLIMIT_AS is
#: ``max_memory`` above that); once it has grown more, it serves no more renders.
MAX_GROWTH = 32 * MB


def memory_message(limits: RenderLimits) -> str:
    return f"template used more than {limits.max_memory // MB} MB while rendering"


def _template_line(exc: BaseException) -> int | None:
    """Find the innermost template line in a traceback Jinja rewrote to template lines."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == TEMPLATE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _error_result(exc: BaseException, limits: RenderLimits) -> dict[str, Any]:
    """Turn an exception raised while compiling or rendering into a result for the parent."""
    if isinstance(exc, TemplateSyntaxError):
        return {"error": _shorten(exc.message or str(exc)), "line": exc.lineno}
    line = _template_line(exc)
    if isinstance(exc, parsing.ParseError):
        message, line = exc.message, exc.line
    elif isinstance(exc, MemoryError):
        message = memory_message(limits)
    elif isinstance(exc, RecursionError):
        message = "template recursed too deeply (macro calling itself?)"
    elif isinstance(exc, LimitExceeded):
        message = str(exc)
    elif isinstance(exc, SecurityError):
        message = f"not allowed in a template: {exc}"
    elif isinstance(exc, SyntaxError):
        # Python refuses the code Jinja generated (e.g. more than 20 nested blocks).
        message = f"template cannot be compiled: {exc.msg}"
        line = None
    elif isinstance(exc, JinjaTemplateError):
        message = str(exc.message or exc)
    else:
        message = f"{type(exc).__name__}: {exc}"
    return {"error": _shorten(message), "line": line}


def _error_payload(exc: BaseException, limits: RenderLimits) -> str:
    try:
        return json.dumps(_error_result(exc, limits))
    except Exception:  # a message that cannot be built is still an error
        return json.dumps({"error": f"template rendering failed ({type(exc).__name__})"})


def _compile(
    env: TemplateEnvironment, source: str, generated: str | None
) -> tuple[CodeType, str | None]:
    """Return the template's code object and, unless it was given, the generated source.

    With ``generated`` (cached by the parent) only Python's ``compile()`` runs; otherwise
    Jinja's lexer, parser, optimizer and code generator first, exactly as ``from_string``.
    """
    if generated is not None:
        return env._compile(generated, TEMPLATE_FILENAME), None
    fresh = env.compile(source, raw=True)
    return env._compile(fresh, TEMPLATE_FILENAME), fresh


def _work(
    env: TemplateEnvironment, code: CodeType, context: dict[str, Any], fmt: str | None
) -> str:
    """Render the compiled template, optionally parse; return the JSON result text."""
    limits = env.limits
    try:
        template = env.template_class.from_code(env, code, env.make_globals(None), None)
        pieces: list[str] = []
        size = 0
        for piece in template.generate(context):
            size += len(piece)
            if size > limits.max_output:
                raise LimitExceeded(
                    f"rendered template is larger than {limits.max_output} characters"
                )
            pieces.append(piece)
        text = "".join(pieces)
        del pieces
        value: Any = text if fmt is None else parsing.parse(text, fmt)
        del text
        return parsing.result_payload(value, fmt, limits.max_output)
    except Exception as exc:  # every render error becomes a message for the parent
        return _error_payload(exc, limits)


def _set_limit(which: int, soft: int, hard: int | None = None) -> None:
    """Lower a resource limit (never raise it); ignore platforms that refuse."""
    hard = soft if hard is None else hard
    try:
        _current, ceiling = resource.getrlimit(which)
        if ceiling != resource.RLIM_INFINITY:
            soft, hard = min(soft, ceiling), min(hard, ceiling)
        resource.setrlimit(which, (soft, hard))
    except (ValueError, OSError):
        pass


def _set_soft_limit(which: int, soft: int) -> None:
    """Move a soft limit (up or down) under the hard limit set once at start."""
    try:
        _current, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(which, (soft, hard))
    except (ValueError, OSError):
        pass


def _address_space() -> int:
    """Return the current address-space size in bytes (0 when unknown)."""
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
        try:
            data = os.read(fd, 256)
        finally:
            os.close(fd)
        return int(data.split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_budget(limits: RenderLimits) -> int:
    """CPU seconds one render may use: SIGXCPU after them, SIGKILL one second later."""
    return math.ceil(limits.timeout) + 1


def _setup(keep_fds: tuple[int, ...], limits: RenderLimits) -> int:
    """Make the freshly forked renderer safe: no inherited handlers, finalizers, fds; limits.

    Returns the address space it started with: the base its growth is measured from.
    """
    # Objects inherited from the zygote must never be finalized here.
    gc.freeze()
    for name in _RESET_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_DFL)
    with contextlib.suppress(AttributeError, OSError, ValueError):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGXCPU})
    # A crash must not write a core file.
    _set_limit(resource.RLIMIT_CORE, 0)
    # The hard limits are set once, for the renderer's life; each render then gets its own
    # soft limits under them (``_limit_render``). The first render's are those of a process
    # forked for one render: a CPU budget counted from the fork, ``max_memory`` on top of the
    # address space at start.
    budget = _cpu_budget(limits)
    _set_limit(resource.RLIMIT_CPU, budget, budget + 1 + LIFETIME_CPU)
    base = _address_space()
    _set_limit(resource.RLIMIT_AS, base + limits.max_memory, base + limits.max_memory + MAX_GROWTH)
    # Drop every inherited descriptor but stdio and the two pipes, so not even a sandbox
    # escape can write anywhere but to the parent's result pipe.
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        fds = []
    for fd in fds:
        if fd > 2 and fd not in keep_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
    return base


def _limit_render(limits: RenderLimits) -> None:
    """Give the next render a whole CPU budget and ``max_memory`` on top of what is in use."""
    _set_soft_limit(resource.RLIMIT_CPU, int(_cpu_seconds()) + _cpu_budget(limits))
    _set_soft_limit(resource.RLIMIT_AS, _address_space() + limits.max_memory)


def _can_serve_another(limits: RenderLimits, base: int) -> bool:
    """Whether a next render would still get its whole budget under the hard limits."""
    _soft, hard_cpu = resource.getrlimit(resource.RLIMIT_CPU)
    # one second for the int() of the next render's start, one for SIGKILL after SIGXCPU
    cpu_left = hard_cpu == resource.RLIM_INFINITY or (
        int(_cpu_seconds()) + _cpu_budget(limits) + 2 <= hard_cpu
    )
    return cpu_left and _address_space() - base <= MAX_GROWTH


def _read_exactly(fd: int, size: int) -> bytes | None:
    """``size`` bytes from ``fd``; None at end of file."""
    chunks = bytearray()
    while len(chunks) < size:
        data = os.read(fd, min(size - len(chunks), 1 << 20))
        if not data:
            return None
        chunks += data
    return bytes(chunks)


def _next_request(rfd: int, idle: float | None) -> tuple[Any, Any, Any] | None:
    """The next request; None when the parent closed the pipe or sent none for ``idle`` s."""
    if idle is not None and not select.select([rfd], [], [], idle)[0]:
        return None
    header = _read_exactly(rfd, REQUEST_LENGTH.size)
    if header is None:
        return None
    data = _read_exactly(rfd, REQUEST_LENGTH.unpack(header)[0])
    if data is None:
        return None
    # From the parent, which wrote it: the template (or None), then the context and format.
    stream = io.BytesIO(data)
    template = pickle.load(stream)
    context, fmt = pickle.load(stream)
    return template, context, fmt


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the pipe ``fd`` (both ends of a render use it)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def serve(wfd: int, rfd: int, env: TemplateEnvironment) -> NoReturn:
    """Run in the renderer: read requests from ``rfd``, reply on ``wfd``. Never returns.

    The first request carries the template: it is compiled under the first render's limits
    (errors become that render's result) and the code object is kept for the later ones,
    which carry only their context. Each reply's frame (the freshly generated code, or
    nothing) is written before any generated code runs, so a template cannot alter what the
    parent caches, whatever it does while rendering.
    """
    status = 70
    try:
        limits = env.limits
        pid = os.getpid()
        # Built before any render so that reporting a MemoryError needs no memory.
        out_of_memory = json.dumps({"error": memory_message(limits)}).encode()
        request = _next_request(rfd, None)
        code: CodeType | None = None
        base = 0
        first = True
        while request is not None:
            template, context, fmt = request
            del request
            error: str | None = None
            frame = EMPTY_FRAME
            try:
                if first:
                    base = _setup((wfd, rfd), limits)
                else:
                    _limit_render(limits)
                    # The one state a sandboxed template changes that a later render could
                    # see: the draws of ``|random`` and ``lipsum``. Seeded afresh, as the
                    # fork seeded the first render's.
                    random.seed()
                if code is None and template is not None:
                    source, generated, code_limit = template
                    del template
                    try:
                        code, fresh = _compile(env, source, generated)
                    except Exception as exc:  # syntax errors, code Python refuses, memory
                        error = _error_payload(exc, limits)
                    else:
                        frame = code_frame(fresh, code_limit)
            except MemoryError:
                code = None
            first = False
            try:
                write_all(wfd, frame)
            except BaseException:
                os._exit(status)  # never follow a partial frame with anything
            try:
                if code is not None:
                    payload = _work(env, code, context, fmt).encode("utf-8", "surrogatepass")
                else:
                    payload = error.encode() if error is not None else out_of_memory
            except MemoryError:
                payload = out_of_memory
            del context
            reusable = code is not None and _can_serve_another(limits, base)
            write_all(wfd, REPLY.pack(pid, reusable, len(payload)))
            write_all(wfd, payload)
            del payload
            if not reusable:
                break
            request = _next_request(rfd, IDLE_EXIT)
        status = 0
    except BaseException:  # the parent reports a renderer that wrote no result
        pass
    finally:
        os._exit(status)
