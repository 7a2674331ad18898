"""The Jinja2 environment operator templates are rendered in, and the limits of one render.

The ``ImmutableSandboxedEnvironment`` refuses internal attributes (``__class__``, ``mro``,
``__globals__``...), mutating methods and ``str.format`` tricks; on top of it this module
refuses huge ``*`` and ``**`` results and refuses to print functions and classes. The process
limits (memory, CPU, wall clock, output size) are applied to each render by the renderer
process and its supervisor (``rendering.child``, ``rendering.supervisor``).
"""

from __future__ import annotations

import inspect
import math
import types
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, pass_context
from jinja2.exceptions import SecurityError
from jinja2.lexer import Lexer
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

MB = 1024 * 1024
# The file name Jinja gives code compiled by from_string(); its traceback frames carry it.
TEMPLATE_FILENAME = "<template>"


@dataclass(frozen=True)
class RenderLimits:
    """Bounds of one render.

    ``timeout``: wall-clock seconds for the whole render (compile, render, parse).
    ``max_output``: characters of rendered text.
    ``max_memory``: bytes of address space the render may add on top of what the renderer had
    when the render began (a big web or worker process must not starve the render, nor a
    template use more than this).
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


DEFAULT_LIMITS = RenderLimits()


class LimitExceeded(SecurityError):
    """A render limit (operator result size, output size) was reached."""


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

    def __init__(self, limits: RenderLimits = DEFAULT_LIMITS) -> None:
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
    def lexer(self) -> Lexer:
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
                    raise LimitExceeded(
                        f"result of * would have {items} items; limit is {self.limits.max_repeat}"
                    )
                return
        if _is_int(left) and _is_int(right):
            bits = abs(left).bit_length() + abs(right).bit_length()
            if bits > self.limits.max_power:
                raise LimitExceeded(
                    f"result of * would need about {bits} bits; limit is {self.limits.max_power}"
                )

    def _check_power(self, base: Any, exponent: Any) -> None:
        if _is_number(exponent) and abs(exponent) > self.limits.max_power:
            raise LimitExceeded(f"exponent of ** is {exponent}; limit is {self.limits.max_power}")
        if not (_is_int(base) and _is_int(exponent)) or exponent <= 0 or abs(base) < 2:
            # Float powers overflow with an error instead of growing; negative integer
            # exponents give floats; 0, 1 and -1 stay small.
            return
        bits = math.ceil(exponent * math.log2(abs(base)))
        if bits > self.limits.max_power:
            raise LimitExceeded(
                f"result of ** would need about {bits} bits; limit is {self.limits.max_power}"
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
