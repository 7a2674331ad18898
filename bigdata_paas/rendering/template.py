"""Render operator-written Jinja2 templates in a sandbox, in a short-lived child process.

Two layers keep a hostile or careless template from hurting the web or worker process:

* the Jinja2 ``ImmutableSandboxedEnvironment`` refuses internal attributes (``__class__``,
  ``mro``, ``__globals__``...), mutating methods and ``str.format`` tricks; on top of it this
  module refuses huge ``*`` and ``**`` results and refuses to print functions and classes;
* the render (compile, render, parse) runs in a forked child with an address-space limit, a
  CPU-time limit, a wall-clock deadline enforced by the parent (SIGKILL) and an output cap, so
  loops, memory hogs and output bombs end as a ``TemplateError`` instead of a stuck worker.

The child only renders and writes a JSON result to a pipe, then leaves with ``os._exit``: it
never returns into the caller's code, never runs finalizers of inherited objects and never
touches inherited database or broker sockets. The parent never unpickles anything.

Compiling a template (Jinja's lexer, parser and code generator, then Python's ``compile``) costs
far more than rendering a small one, and it must happen in the child: Jinja folds constant
expressions while generating code (``{{ 'x'|center(999999999) }}`` would allocate there). So the
first render of a source also sends back the Python source Jinja generated for it, and the
parent keeps it in a small LRU cache keyed by the template source and the environment's
settings; later renders hand that text to the child, which only runs Python's ``compile()`` on
it. The generated code depends on nothing but the source and the environment (never on the
context or the limits), and the child writes it to the pipe before any template code runs, so
nothing a template does while rendering can change what is cached.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import inspect
import json
import math
import os
import resource
import select
import selectors
import signal
import threading
import time
import types
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from types import CodeType
from typing import Any, NoReturn

# Imported up front so the child never imports: an import lock held by another thread of the
# parent at fork time would deadlock it (Jinja imports jinja2.debug lazily on errors).
import jinja2
import jinja2.compiler
import jinja2.debug
import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, pass_context
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.lexer import Lexer
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bigdata_paas.errors import TemplateError, Unavailable

__all__ = [
    "RESERVED_NAMES",
    "RenderLimits",
    "build_context",
    "check_syntax",
    "clear_code_cache",
    "render_spec",
    "render_text",
]

MB = 1024 * 1024
# The file name Jinja gives code compiled by from_string(); its traceback frames carry it.
TEMPLATE_FILENAME = "<template>"
RESERVED_NAMES = ("opts", "instancename", "clusterid", "clusterdn", "user", "service", "version")
_FORMATS = ("json", "yaml")
_MAX_MESSAGE = 500


@dataclass(frozen=True)
class RenderLimits:
    """Bounds of one render.

    ``timeout``: wall-clock seconds for the whole render (compile, render, parse).
    ``max_output``: characters of rendered text.
    ``max_memory``: bytes of address space the render may add on top of what the process had
    when it forked (a big web or worker process must not starve the render, nor a template
    use more than this).
    ``max_repeat``: longest str/list/tuple a ``*`` may produce.
    ``max_power``: ``**`` is refused when the absolute exponent exceeds it or when the integer
    result would need more than that many bits, and ``*`` on two integers likewise: so
    ``10 ** 10000`` (33,220 bits) is refused while ``2 ** 64`` or ``1024 ** 3`` are fine.
    """

    timeout: float = 5.0
    max_output: int = 2_000_000
    max_memory: int = 512 * MB
    max_repeat: int = 100_000
    max_power: int = 10_000

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError("timeout must be > 0")
        for name in ("max_output", "max_memory", "max_repeat", "max_power"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


class _LimitExceeded(SecurityError):
    """A render limit (operator result size, output size) was reached."""


_DEFAULT_LIMITS = RenderLimits()


# --------------------------------------------------------------------------- the sandbox


def _printable_problem(value: Any) -> str | None:
    """Return why a value must not be printed, or None when it is plain data."""
    stack = [value]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, Undefined):
            # StrictUndefined inside a list would print as "Undefined"; raise its real error.
            item._fail_with_undefined_error()
        if item is None or isinstance(item, (str, int, float)):
            continue
        if isinstance(item, (list, tuple, dict)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            else:
                stack.extend(item)
            continue
        if isinstance(item, type):
            return "a class"
        if inspect.isroutine(item):
            return "a function"
        if isinstance(item, (range, types.GeneratorType)):
            return f"a {type(item).__name__} (use |list to output its items)"
        return f"a {type(item).__name__} object"
    return None


@pass_context  # with a context argument Jinja cannot fold outputs at compile time
def _finalize(context: Context, value: Any) -> Any:
    """Let plain data through to the output; refuse functions, classes and other objects."""
    if value is None or isinstance(value, (str, int, float, Undefined)):
        return value
    problem = _printable_problem(value)
    if problem:
        raise SecurityError(
            f"cannot output {problem}; only strings, numbers, booleans, "
            "lists and dicts can be output"
        )
    return value


class TemplateEnvironment(ImmutableSandboxedEnvironment):
    """The only environment operator templates are rendered in: sandboxed, strict, bounded."""

    intercepted_binops = frozenset(["*", "**"])

    def __init__(self, limits: RenderLimits = _DEFAULT_LIMITS) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            extensions=(),
            finalize=_finalize,
            cache_size=0,
            auto_reload=False,
        )
        self.limits = limits
        # Jinja shares lexers through a global LRU cache guarded by a lock; a lock held by
        # another thread when we fork would deadlock the child, so this environment owns one.
        self._own_lexer = Lexer(self)

    @property
    def lexer(self) -> Lexer:  # type: ignore[override]
        return self._own_lexer

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Run ``*`` and ``**`` only when the result stays within the render limits."""
        if operator == "*":
            self._check_repeat(left, right)
        elif operator == "**":
            self._check_power(left, right)
        return self.binop_table[operator](left, right)

    def _check_repeat(self, left: Any, right: Any) -> None:
        for seq, count in ((left, right), (right, left)):
            if isinstance(seq, (str, bytes, list, tuple)) and isinstance(count, int):
                items = len(seq) * max(count, 0)
                if items > self.limits.max_repeat:
                    raise _LimitExceeded(
                        f"result of * would have {items} items; limit is {self.limits.max_repeat}"
                    )
                return
        if _is_int(left) and _is_int(right):
            bits = abs(left).bit_length() + abs(right).bit_length()
            if bits > self.limits.max_power:
                raise _LimitExceeded(
                    f"result of * would need about {bits} bits; limit is {self.limits.max_power}"
                )

    def _check_power(self, base: Any, exponent: Any) -> None:
        if _is_number(exponent) and abs(exponent) > self.limits.max_power:
            raise _LimitExceeded(f"exponent of ** is {exponent}; limit is {self.limits.max_power}")
        if not (_is_int(base) and _is_int(exponent)) or exponent <= 0 or abs(base) < 2:
            # Float powers overflow with an error instead of growing; negative integer
            # exponents give floats; 0, 1 and -1 stay small.
            return
        bits = math.ceil(exponent * math.log2(abs(base)))
        if bits > self.limits.max_power:
            raise _LimitExceeded(
                f"result of ** would need about {bits} bits; limit is {self.limits.max_power}"
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- the code cache

#: Generated code larger than this is not cached (nor sent back by the child): such a template
#: (hundreds of KB of source) is simply compiled again on every render.
MAX_CACHED_CODE = MB
#: Bounds of the per-process cache of generated code (entries, and bytes over all entries).
CODE_CACHE_ENTRIES = 256
CODE_CACHE_BYTES = 16 * MB


class _CodeCache:
    """A thread-safe LRU of the Python source Jinja generated, keyed by ``_cache_key``.

    Only the parent uses it; the child gets the cached text as an argument, so a lock held by
    another thread at fork time cannot deadlock it.
    """

    def __init__(
        self,
        max_entries: int = CODE_CACHE_ENTRIES,
        max_bytes: int = CODE_CACHE_BYTES,
        max_entry_bytes: int = MAX_CACHED_CODE,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        # Nothing is asked of the child when nothing could be kept.
        self.max_entry_bytes = min(max_entry_bytes, max_bytes) if max_entries > 0 else 0
        self._entries: OrderedDict[bytes, tuple[str, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: bytes) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: bytes, code: str, size: int) -> None:
        """Keep ``code`` (``size`` bytes as UTF-8), evicting the least recently used."""
        if size > self.max_entry_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._entries[key] = (code, size)
            self._size += size
            while self._entries and (
                len(self._entries) > self.max_entries or self._size > self.max_bytes
            ):
                _key, (_code, evicted) = self._entries.popitem(last=False)
                self._size -= evicted

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes of generated code held."""
        return self._size


_CODE_CACHE = _CodeCache()


def clear_code_cache() -> None:
    """Forget the generated code of every template rendered so far (tests, benchmarks)."""
    _CODE_CACHE.clear()


def _name(obj: Any) -> str:
    """Name a setting: functions and classes by qualified name, data by value, else repr.

    A repr that holds an address only makes two equal environments miss each other's
    entries; it never makes different ones share.
    """
    if isinstance(obj, (str, int, float, bool, type(None))):
        return repr(obj)
    if isinstance(obj, dict):
        return "{" + ", ".join(sorted(f"{_name(k)}: {_name(v)}" for k, v in obj.items())) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(_name(item) for item in obj) + "]"
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(qualname, str):
        return f"{getattr(obj, '__module__', '?')}.{qualname}"
    return repr(obj)


def _codegen_fingerprint(env: TemplateEnvironment) -> bytes:
    """Digest of every environment setting Jinja's lexer, parser, optimizer or codegen read.

    The limits are left out on purpose: they are only read while rendering.
    """
    settings = (
        jinja2.__version__,
        _name(type(env)),
        _name(env.code_generator_class),
        _name(env.template_class),
        env.block_start_string,
        env.block_end_string,
        env.variable_start_string,
        env.variable_end_string,
        env.comment_start_string,
        env.comment_end_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        env.trim_blocks,
        env.lstrip_blocks,
        env.newline_sequence,
        env.keep_trailing_newline,
        env.optimized,
        env.is_async,
        env.sandboxed,
        _name(env.autoescape),
        _name(env.finalize),
        _name(env.undefined),
        sorted(env.intercepted_binops),
        sorted(env.intercepted_unops),
        sorted(env.extensions),
        sorted((name, _name(func)) for name, func in env.filters.items()),
        sorted((name, _name(func)) for name, func in env.tests.items()),
        sorted(env.globals),
        sorted((name, _name(value)) for name, value in env.policies.items()),
    )
    return hashlib.sha256(repr(settings).encode()).digest()


@functools.lru_cache(maxsize=8)
def _environment(limits: RenderLimits) -> tuple[TemplateEnvironment, bytes]:
    """The environment for these limits and its fingerprint; only ever used to fork a child."""
    env = TemplateEnvironment(limits)
    return env, _codegen_fingerprint(env)


def _cache_key(fingerprint: bytes, source: str) -> bytes:
    return hashlib.sha256(fingerprint + source.encode("utf-8", "surrogatepass")).digest()


# The child's output on the pipe: a frame (4-byte big-endian length, then that many bytes of
# generated code, usually none), then the JSON result.
_FRAME_HEADER = 4
_EMPTY_FRAME = bytes(_FRAME_HEADER)


def _code_frame(generated: str | None, limit: int) -> bytes:
    if generated is None:
        return _EMPTY_FRAME
    data = generated.encode("utf-8", "surrogatepass")
    if len(data) > limit:
        return _EMPTY_FRAME
    return len(data).to_bytes(_FRAME_HEADER, "big") + data


def _split_frame(data: bytes, code_limit: int) -> tuple[bytes, bytes] | None:
    """Return (generated code, result) from the child's output, or None when malformed.

    ``code_limit`` is what this render asked for: 0 when the child had the code already.
    """
    if len(data) < _FRAME_HEADER:
        return None
    size = int.from_bytes(data[:_FRAME_HEADER], "big")
    end = _FRAME_HEADER + size
    if size > code_limit or len(data) < end:
        return None
    return data[_FRAME_HEADER:end], data[end:]


# --------------------------------------------------------------------------- public helpers


def check_syntax(source: str) -> None:
    """Parse a template (nothing is evaluated); raise TemplateError on a syntax error."""
    try:
        TemplateEnvironment().parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(exc.message or str(exc), line=exc.lineno) from None
    except RecursionError:
        raise TemplateError("template is nested too deeply") from None


def build_context(
    options: dict[str, Any],
    *,
    instancename: str,
    clusterid: str,
    clusterdn: str,
    user: str,
    service: str,
    version: str,
) -> dict[str, Any]:
    """Build the render context: flat ``opts``, nested option names and instance coordinates.

    Option ``slaves.number`` is reachable as ``opts['slaves.number']`` and as
    ``{{ slaves.number }}``. The reserved names (``opts``, ``instancename``, ``clusterid``,
    ``clusterdn``, ``user``, ``service``, ``version``) win over a nested top-level name that
    collides with them, and an option that clashes with another's prefix (``a`` and ``a.b``,
    which a validated document never has) is only reachable through ``opts``; the first one in
    ``options`` order keeps the nested name. Nested names shadow Jinja globals of the same name
    (an option ``range.x`` hides ``range()``): that is the operator's choice.
    """
    nested: dict[str, Any] = {}
    for name, value in options.items():
        parts = name.split(".")
        node = nested
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            if parts[-1] not in node:
                node[parts[-1]] = value
    context: dict[str, Any] = {"opts": dict(options)}
    context.update(nested)
    context.update(
        opts=dict(options),
        instancename=instancename,
        clusterid=clusterid,
        clusterdn=clusterdn,
        user=user,
        service=service,
        version=version,
    )
    return context


def render_text(
    source: str, context: dict[str, Any], *, limits: RenderLimits = _DEFAULT_LIMITS
) -> str:
    """Render a template in the sandboxed child process and return the text."""
    result = _render_isolated(source, context, limits, fmt=None)
    if not isinstance(result, str):
        raise TemplateError("template rendering failed (bad result from the render process)")
    return result


def render_spec(
    source: str,
    context: dict[str, Any],
    *,
    fmt: str = "json",
    limits: RenderLimits = _DEFAULT_LIMITS,
) -> Any:
    """Render a template and parse the text as JSON or YAML (safe loader), in the child."""
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be 'json' or 'yaml', not {fmt!r}")
    return _render_isolated(source, context, limits, fmt=fmt)


# --------------------------------------------------------------------------- the child


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
    if isinstance(exc, _ParseError):
        message, line = exc.message, exc.line
    elif isinstance(exc, MemoryError):
        message = f"template used more than {limits.max_memory // MB} MB while rendering"
    elif isinstance(exc, RecursionError):
        message = "template recursed too deeply (macro calling itself?)"
    elif isinstance(exc, _LimitExceeded):
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


class _ParseError(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _excerpt(text: str, lineno: int) -> str:
    lines = text.splitlines()
    if 1 <= lineno <= len(lines):
        shown = lines[lineno - 1].strip()
        return shown if len(shown) <= 80 else shown[:77] + "..."
    return ""


def _refuse_constant(name: str) -> Any:
    raise _ParseError(f"rendered template is not valid JSON: {name} is not allowed")


_TOO_DEEP = "rendered template is nested too deeply"


def _parse(text: str, fmt: str) -> Any:
    """Parse rendered text; raise _ParseError naming the line of the rendered text."""
    if fmt == "json":
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise _ParseError(_TOO_DEEP) from None
        except json.JSONDecodeError as exc:
            near = _excerpt(text, exc.lineno)
            raise _ParseError(
                f"rendered template is not valid JSON: {exc.msg} "
                f"(rendered line {exc.lineno}, column {exc.colno}: {near!r})",
                exc.lineno,
            ) from None
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise _ParseError(_TOO_DEEP) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        lineno = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        where = f" (rendered line {lineno}, column {mark.column + 1})" if mark else ""
        raise _ParseError(
            f"rendered template is not valid YAML: {problem}{where}", lineno
        ) from None


def _check_expansion(root: Any, limit: int) -> None:
    """Refuse YAML whose aliases expand past ``limit`` characters, or that refers to itself.

    Sizes are counted over the shared structure (memoized per object), so an alias bomb is
    refused after visiting each distinct object once instead of after expanding it.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        item, finished = stack.pop()
        children = list(item.values()) if isinstance(item, dict) else item
        if finished:
            total = 2
            for child in children:
                if isinstance(child, (dict, list)):
                    total += sizes[id(child)]
                else:
                    total += len(child) + 2 if isinstance(child, str) else 8
            if isinstance(item, dict):
                total += sum(len(str(key)) + 4 for key in item)
            if total > limit:
                raise _ParseError(
                    f"rendered spec expands to more than {limit} characters (YAML aliases?)"
                )
            sizes[id(item)] = total
            active.discard(id(item))
            continue
        if id(item) in sizes:
            continue
        if id(item) in active:
            # Still open while popped again: it is its own ancestor.
            raise _ParseError("rendered YAML refers to itself (recursive alias)")
        active.add(id(item))
        stack.append((item, True))
        stack.extend(
            (child, False)
            for child in children
            if isinstance(child, (dict, list)) and id(child) not in sizes
        )


def _json_default(value: Any) -> Any:
    """Let YAML dates through as ISO strings; refuse anything else JSON cannot hold."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"a {type(value).__name__} value cannot be stored as JSON")


def _error_payload(exc: BaseException, limits: RenderLimits) -> str:
    try:
        return json.dumps(_error_result(exc, limits))
    except Exception:  # a message that cannot be built is still an error
        return json.dumps({"error": f"template rendering failed ({type(exc).__name__})"})


def _child_compile(
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


def _child_work(
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
                raise _LimitExceeded(
                    f"rendered template is larger than {limits.max_output} characters"
                )
            pieces.append(piece)
        text = "".join(pieces)
        del pieces
        value: Any = text if fmt is None else _parse(text, fmt)
        del text
        if fmt == "yaml" and isinstance(value, (dict, list)):
            _check_expansion(value, 4 * limits.max_output)
        try:
            payload = json.dumps(
                {"ok": value}, ensure_ascii=False, allow_nan=False, default=_json_default
            )
        except (TypeError, ValueError) as exc:
            raise _ParseError(f"rendered template holds a value JSON cannot store: {exc}") from None
        except RecursionError:
            raise _ParseError(_TOO_DEEP) from None
        if fmt is not None:
            # "\ud800" is valid JSON but no text: no database column could store a spec or
            # an error message that holds it.
            try:
                payload.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad = exc.object[exc.start : exc.end]
                raise _ParseError(f"rendered spec holds a lone surrogate {bad!r}") from None
        # YAML aliases can expand a small document into a huge one.
        if len(payload) > 4 * limits.max_output + 1024:
            raise _ParseError(
                f"rendered spec expands to more than {4 * limits.max_output} characters"
            )
        return payload
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


def _child_setup(keep_fd: int, limits: RenderLimits) -> None:
    """Make the freshly forked child safe: no parent handlers, finalizers, fds; hard limits."""
    # Objects inherited from the parent (sockets, connections) must never be finalized here:
    # a finalizer could send a "close" on a connection the parent still uses.
    gc.freeze()
    for name in (
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
    ):
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


def _child_main(
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
        out_of_memory = json.dumps(
            {
                "error": f"template used more than {limits.max_memory // MB} MB while rendering",
            }
        ).encode()
        code: CodeType | None = None
        error: str | None = None
        frame = _EMPTY_FRAME
        try:
            _child_setup(wfd, limits)
            try:
                code, fresh = _child_compile(env, source, generated)
            except Exception as exc:  # syntax errors, code Python refuses, memory
                error = _error_payload(exc, limits)
            else:
                frame = _code_frame(fresh, code_limit)
        except MemoryError:
            code = None
        try:
            _write_all(wfd, frame)
        except BaseException:
            os._exit(status)  # never follow a partial frame with anything
        try:
            if code is not None:
                payload = _child_work(env, code, context, fmt).encode("utf-8", "surrogatepass")
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


# --------------------------------------------------------------------------- the parent


def _fork() -> int:
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a threaded process; the child only renders and
        # exits, never touching locks other threads may hold (see TemplateEnvironment.lexer).
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _open_pidfd(pid: int) -> int | None:
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


def _render_isolated(
    source: str, context: dict[str, Any], limits: RenderLimits, *, fmt: str | None
) -> Any:
    """Run the render in a forked child under limits; return its value or raise."""
    if not isinstance(source, str):
        raise TemplateError("template must be text")
    env, fingerprint = _environment(limits)
    cache = _CODE_CACHE
    key = _cache_key(fingerprint, source)
    generated = cache.get(key)
    # How much generated code the child may send back: none when it has it already.
    code_limit = 0 if generated is not None else cache.max_entry_bytes
    # Escaped text can be several bytes per character; anything beyond this is not ours.
    max_bytes = 24 * limits.max_output + MB + _FRAME_HEADER + code_limit
    rfd, wfd = os.pipe()
    try:
        pid = _fork()
    except OSError as exc:
        os.close(rfd)
        os.close(wfd)
        raise Unavailable(f"cannot start a template render process: {exc}") from None
    if pid == 0:
        _child_main(wfd, env, source, generated, code_limit, context, fmt)
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
        pidfd = _open_pidfd(pid)
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
            _keep_code(cache, key, _head(chunks, _FRAME_HEADER + code_limit), code_limit)
        else:
            output = b"".join(chunks)
            chunks.clear()
            result = _decode(_keep_code(cache, key, output, code_limit))
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


def _keep_code(cache: _CodeCache, key: bytes, output: bytes, code_limit: int) -> bytes | None:
    """Cache the generated code the child sent, if any; return the result part of the output.

    None when the output does not start with a well-formed frame (a child that died before
    writing it, or a frame this render did not ask for).
    """
    parts = _split_frame(output, code_limit)
    if parts is None:
        return None
    code, result = parts
    if code:
        with contextlib.suppress(UnicodeDecodeError):
            cache.put(key, code.decode("utf-8", "surrogatepass"), len(code))
    return result


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
            return TemplateError(
                f"template used more than {limits.max_memory // MB} MB while "
                f"rendering (render process killed by {name})"
            )
        return TemplateError(f"template rendering failed (render process killed by {name})")
    code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None
    return TemplateError(f"template rendering failed (render process exited with status {code})")
