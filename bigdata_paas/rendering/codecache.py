"""The parent's cache of the Python source Jinja generates for a template.

Compiling a template (Jinja's lexer, parser and code generator, then Python's ``compile``) costs
far more than rendering a small one, and it must happen in the renderer: Jinja folds constant
expressions while generating code (``{{ 'x'|center(999999999) }}`` would allocate there). So a
new renderer (``rendering.child``) given no code sends back, with its first reply, the Python
source Jinja generated, and the parent keeps it in a small LRU cache keyed by the template
source and the environment's settings; a later new renderer for that template is handed that
text and only runs Python's ``compile()`` on it, and every renderer keeps its code object for
its later renders. The generated code depends on nothing but the source and the environment
(never on the context or the limits), and the renderer writes it to the pipe before any
template code runs, so nothing a template does while rendering can change what is cached.

Each reply on the pipe starts with a frame (4-byte big-endian length, then that many bytes of
generated code, usually none); the reply header and the JSON result follow
(``rendering.child``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
from collections import OrderedDict
from typing import Any

import jinja2

from bigdata_paas.rendering.sandbox import MB, RenderLimits, TemplateEnvironment

#: Generated code larger than this is not cached (nor sent back by a renderer): such a
#: template (hundreds of KB of source) is compiled again by every new renderer.
MAX_CACHED_CODE = MB
#: Bounds of the per-process cache of generated code (entries, and bytes over all entries).
CODE_CACHE_ENTRIES = 256
CODE_CACHE_BYTES = 16 * MB

FRAME_HEADER = 4
EMPTY_FRAME = bytes(FRAME_HEADER)


class CodeCache:
    """A thread-safe LRU of the Python source Jinja generated, keyed by ``cache_key``.

    Only the parent uses it; a renderer gets the cached text in its first request, so a lock
    held by another thread at fork time cannot deadlock it.
    """

    def __init__(
        self,
        max_entries: int = CODE_CACHE_ENTRIES,
        max_bytes: int = CODE_CACHE_BYTES,
        max_entry_bytes: int = MAX_CACHED_CODE,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        # Nothing is asked of a renderer when nothing could be kept.
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


#: The process's cache; read through the module (``codecache.CODE_CACHE``) so tests can swap it.
CODE_CACHE = CodeCache()


def clear_code_cache() -> None:
    """Forget the generated code of every template rendered so far (tests, benchmarks)."""
    CODE_CACHE.clear()


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


def codegen_fingerprint(env: TemplateEnvironment) -> bytes:
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
def environment(limits: RenderLimits) -> tuple[TemplateEnvironment, bytes]:
    """The environment for these limits and its fingerprint; only ever used to fork a renderer."""
    env = TemplateEnvironment(limits)
    return env, codegen_fingerprint(env)


def cache_key(fingerprint: bytes, source: str) -> bytes:
    return hashlib.sha256(fingerprint + source.encode("utf-8", "surrogatepass")).digest()


def code_frame(generated: str | None, limit: int) -> bytes:
    """The frame a reply starts with: the generated code if it may be sent, else empty."""
    if generated is None:
        return EMPTY_FRAME
    data = generated.encode("utf-8", "surrogatepass")
    if len(data) > limit:
        return EMPTY_FRAME
    return len(data).to_bytes(FRAME_HEADER, "big") + data


def split_frame(data: bytes, code_limit: int) -> tuple[bytes, bytes] | None:
    """Return (generated code, the rest) from a reply, or None when its frame is malformed.

    ``code_limit`` is what this render asked for: 0 when the renderer had the code already.
    """
    if len(data) < FRAME_HEADER:
        return None
    size = int.from_bytes(data[:FRAME_HEADER], "big")
    end = FRAME_HEADER + size
    if size > code_limit or len(data) < end:
        return None
    return data[FRAME_HEADER:end], data[end:]


def keep_code(cache: CodeCache, key: bytes, output: bytes, code_limit: int) -> bytes | None:
    """Cache the generated code the renderer sent, if any; return what follows the frame.

    None when the output does not start with a well-formed frame (a renderer that died before
    writing it, or a frame this render did not ask for).
    """
    parts = split_frame(output, code_limit)
    if parts is None:
        return None
    code, result = parts
    if code:
        with contextlib.suppress(UnicodeDecodeError):
            cache.put(key, code.decode("utf-8", "surrogatepass"), len(code))
    return result
