"""Render operator-written Jinja2 templates in a sandbox, in an isolated render process.

Two layers keep a hostile or careless template from hurting the web or worker process: the
sandboxed environment (``rendering.sandbox``) and a renderer process under hard limits
(``rendering.child``: forked by a small clean zygote, it serves renders of one template only,
each under its own limits; ``rendering.supervisor`` pools renderers and enforces the deadline
and the output cap). The Python code Jinja generates for a template is cached by the parent
(``rendering.codecache``); the rendered text is parsed in the renderer
(``rendering.parsing``). This module is the entry point: a syntax check and the two renders.
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateSyntaxError

from bigdata_paas.errors import TemplateError
from bigdata_paas.rendering import supervisor
from bigdata_paas.rendering.codecache import clear_code_cache
from bigdata_paas.rendering.sandbox import DEFAULT_LIMITS, RenderLimits, TemplateEnvironment

__all__ = [
    "FORMATS",
    "RenderLimits",
    "TemplateEnvironment",
    "check_syntax",
    "clear_code_cache",
    "render_spec",
    "render_text",
]

FORMATS = ("json", "yaml")


def check_syntax(source: str) -> None:
    """Parse a template (nothing is evaluated); raise TemplateError on a syntax error."""
    try:
        TemplateEnvironment().parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(exc.message or str(exc), line=exc.lineno) from None
    except RecursionError:
        raise TemplateError("template is nested too deeply") from None


def render_text(
    source: str, context: dict[str, Any], *, limits: RenderLimits = DEFAULT_LIMITS
) -> str:
    """Render a template in a sandboxed renderer process and return the text."""
    result = supervisor.render_isolated(source, context, limits, fmt=None)
    if not isinstance(result, str):
        raise TemplateError("template rendering failed (bad result from the render process)")
    return result


def render_spec(
    source: str,
    context: dict[str, Any],
    *,
    fmt: str = "json",
    limits: RenderLimits = DEFAULT_LIMITS,
) -> Any:
    """Render a template and parse the text as JSON or YAML (safe loader), in the renderer."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be 'json' or 'yaml', not {fmt!r}")
    return supervisor.render_isolated(source, context, limits, fmt=fmt)
