"""Parse rendered text as JSON or YAML (safe loader) and encode the result for the parent.

Runs in the renderer, under the render's limits: a YAML alias bomb or a document nested too deeply
ends as a ``ParseError`` message, never as a stuck or bloated worker.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

TOO_DEEP = "rendered template is nested too deeply"


class ParseError(Exception):
    """Rendered text that is not a storable spec; ``line`` is a line of the rendered text."""

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
    raise ParseError(f"rendered template is not valid JSON: {name} is not allowed")


def parse(text: str, fmt: str) -> Any:
    """Parse rendered text; raise ParseError naming the line of the rendered text."""
    if fmt == "json":
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        except json.JSONDecodeError as exc:
            near = _excerpt(text, exc.lineno)
            raise ParseError(
                f"rendered template is not valid JSON: {exc.msg} "
                f"(rendered line {exc.lineno}, column {exc.colno}: {near!r})",
                exc.lineno,
            ) from None
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ParseError(TOO_DEEP) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        lineno = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        where = f" (rendered line {lineno}, column {mark.column + 1})" if mark else ""
        raise ParseError(f"rendered template is not valid YAML: {problem}{where}", lineno) from None


def check_expansion(root: Any, limit: int) -> None:
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
                raise ParseError(
                    f"rendered spec expands to more than {limit} characters (YAML aliases?)"
                )
            sizes[id(item)] = total
            active.discard(id(item))
            continue
        if id(item) in sizes:
            continue
        if id(item) in active:
            # Still open while popped again: it is its own ancestor.
            raise ParseError("rendered YAML refers to itself (recursive alias)")
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


def result_payload(value: Any, fmt: str | None, max_output: int) -> str:
    """The JSON result text ``{"ok": value}`` for the parent; ParseError if it cannot be one.

    ``value`` is the rendered text (``fmt`` None) or what ``parse`` made of it.
    """
    if fmt == "yaml" and isinstance(value, (dict, list)):
        check_expansion(value, 4 * max_output)
    try:
        payload = json.dumps(
            {"ok": value}, ensure_ascii=False, allow_nan=False, default=_json_default
        )
    except (TypeError, ValueError) as exc:
        raise ParseError(f"rendered template holds a value JSON cannot store: {exc}") from None
    except RecursionError:
        raise ParseError(TOO_DEEP) from None
    if fmt is not None:
        # "\ud800" is valid JSON but no text: no database column could store a spec or
        # an error message that holds it.
        try:
            payload.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start : exc.end]
            raise ParseError(f"rendered spec holds a lone surrogate {bad!r}") from None
    # YAML aliases can expand a small document into a huge one.
    if len(payload) > 4 * max_output + 1024:
        raise ParseError(f"rendered spec expands to more than {4 * max_output} characters")
    return payload
