"""What runs in the forked render child: hard limits, compile, render, parse, one result.

The child only renders and writes a JSON result to a pipe, then leaves with ``os._exit``: it
never returns into the caller's code, never runs finalizers of inherited objects and never
touches inherited database or broker sockets (it closes every descriptor but the pipe).
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import resource
import signal
from types import CodeType
from typing import Any, NoReturn

# Imported up front so the child never imports: an import lock held by another thread of the
# parent at fork time would deadlock it (Jinja imports jinja2.debug lazily on errors).
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
# Signals whose parent handlers must not run in the child.
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


def _setup(keep_fd: int, limits: RenderLimits) -> None:
    """Make the freshly forked child safe: no parent handlers, finalizers, fds; hard limits."""
    # Objects inherited from the parent (sockets, connections) must never be finalized here:
    # a finalizer could send a "close" on a connection the parent still uses.
    gc.freeze()
    for name in _RESET_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_DFL)
    with contextlib.suppress(AttributeError, OSError, ValueError):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGXCPU})
    # A crash must not write a core file full of the parent's secrets.
    _set_limit(resource.RLIMIT_CORE, 0)
    # SIGXCPU at the soft limit, SIGKILL one second later should the signal be ignored.
    cpu = math.ceil(limits.timeout) + 1
    _set_limit(resource.RLIMIT_CPU, cpu, cpu + 1)
    base = _address_space()
    _set_limit(resource.RLIMIT_AS, base + limits.max_memory)
    # Drop every inherited descriptor but stdio and the result pipe, so not even a sandbox
    # escape can write to the parent's database or broker connections (closing a shared
    # socket in a child does not close the parent's).
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        fds = []
    for fd in fds:
        if fd > 2 and fd != keep_fd:
            with contextlib.suppress(OSError):
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def child_main(
    wfd: int,
    env: TemplateEnvironment,
    source: str,
    generated: str | None,
    code_limit: int,
    context: dict[str, Any],
    fmt: str | None,
) -> NoReturn:
    """Run in the child: compile, send the code frame, render, send the result. Never returns.

    The frame (the freshly generated code, or nothing) is written before any generated code
    runs, so a template cannot alter what the parent caches, whatever it does while rendering.
    """
    status = 70
    try:
        limits = env.limits
        # Built before the render so that reporting a MemoryError needs no memory.
        out_of_memory = json.dumps({"error": memory_message(limits)}).encode()
        code: CodeType | None = None
        error: str | None = None
        frame = EMPTY_FRAME
        try:
            _setup(wfd, limits)
            try:
                code, fresh = _compile(env, source, generated)
            except Exception as exc:  # syntax errors, code Python refuses, memory
                error = _error_payload(exc, limits)
            else:
                frame = code_frame(fresh, code_limit)
        except MemoryError:
            code = None
        try:
            _write_all(wfd, frame)
        except BaseException:
            os._exit(status)  # never follow a partial frame with anything
        try:
            if code is not None:
                payload = _work(env, code, context, fmt).encode("utf-8", "surrogatepass")
            else:
                payload = error.encode() if error is not None else out_of_memory
        except MemoryError:
            payload = out_of_memory
        _write_all(wfd, payload)
        status = 0
    except BaseException:  # the parent reports a child that wrote no result
        pass
    finally:
        os._exit(status)
