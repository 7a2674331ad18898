"""Options documents of a service and the options a user launches an instance with.

An options document is ``{"required": {...}, "optional": {...}, "advanced": {...},
"descriptions": {...}, "limits": {...}}``. The three categories map an option name to its
default; the type of the default is the type of the option. Everything here is plain data in,
plain data out, and every validator reports every problem at once.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any

from bigdata_paas.errors import ValidationError
from bigdata_paas.names import OPTION_NAME

CATEGORIES = ("required", "optional", "advanced")
SECTIONS = (*CATEGORIES, "descriptions", "limits")
LIMIT_KEYS = ("min", "max", "choices")

MAX_OPTIONS = 500
MAX_NAME_LENGTH = 100
MAX_STRING_LENGTH = 10_000
MAX_DESCRIPTION_LENGTH = 10_000
MAX_CHOICES = 1_000
# A launch body with thousands of bad keys must not produce a multi-megabyte error.
MAX_PROBLEMS = 200

Problems = list[dict[str, str]]


def _type_name(value: Any) -> str:
    """Name the JSON-ish type of a value for messages."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def describe_value(value: Any) -> str:
    """Show a value in a message: scalars as JSON (shortened), containers by kind."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _short(name: str) -> str:
    """Shorten a user-supplied key so an error never echoes megabytes back."""
    return name if len(name) <= MAX_NAME_LENGTH else name[:MAX_NAME_LENGTH] + "..."


#: the types an option's default may have
OPTION_TYPES = ("boolean", "integer", "number", "string")


def option_type(value: Any) -> str | None:
    """Return the option type of a default, or None when it cannot be a default."""
    kind = _type_name(value)
    return kind if kind in OPTION_TYPES else None


def _fits_type(value: Any, kind: str) -> bool:
    """Tell whether a value is acceptable for an option of the given type."""
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


_ARTICLE = {
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "string": "a string",
}


def _value_problem(value: Any, kind: str, limits: dict[str, Any]) -> str | None:
    """Return what is wrong with a value for an option of ``kind`` within ``limits``."""
    if not _fits_type(value, kind):
        return f"must be {_ARTICLE[kind]}, got {describe_value(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
        return f"must be at most {MAX_STRING_LENGTH} characters, got {len(value)}"
    if "min" in limits and value < limits["min"]:
        return f"must be >= {describe_value(limits['min'])}, got {describe_value(value)}"
    if "max" in limits and value > limits["max"]:
        return f"must be <= {describe_value(limits['max'])}, got {describe_value(value)}"
    # Choices were checked to have the option's type, so == cannot mix up True and 1.
    if "choices" in limits and value not in limits["choices"]:
        shown = ", ".join(describe_value(c) for c in limits["choices"][:20])
        more = ", ..." if len(limits["choices"]) > 20 else ""
        return f"must be one of {shown}{more}; got {describe_value(value)}"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_limits(
    name: str, spec: Any, kind: str, default: Any, problems: Problems
) -> dict[str, Any] | None:
    """Validate the limits of one option; return a clean copy or None when broken."""
    where = f"limits.{name}"
    if not isinstance(spec, dict):
        problems.append({"field": where, "message": f"must be an object, got {_type_name(spec)}"})
        return None
    clean: dict[str, Any] = {}
    broken = False
    for key, value in spec.items():
        if key not in LIMIT_KEYS:
            problems.append(
                {
                    "field": f"{where}.{_short(key)}",
                    "message": "unknown limit; expected min, max or choices",
                }
            )
            broken = True
        elif key in ("min", "max"):
            if kind not in ("integer", "number"):
                problems.append(
                    {
                        "field": f"{where}.{key}",
                        "message": f"only numeric options can have {key}; this option is a {kind}",
                    }
                )
                broken = True
            elif not _is_number(value) or not math.isfinite(value):
                problems.append(
                    {
                        "field": f"{where}.{key}",
                        "message": f"must be a finite number, got {describe_value(value)}",
                    }
                )
                broken = True
            else:
                clean[key] = value
        else:
            if not isinstance(value, list) or not value:
                problems.append(
                    {"field": f"{where}.choices", "message": "must be a non-empty list"}
                )
                broken = True
                continue
            if len(value) > MAX_CHOICES:
                problems.append(
                    {
                        "field": f"{where}.choices",
                        "message": f"must have at most {MAX_CHOICES} entries",
                    }
                )
                broken = True
                continue
            bad = [i for i, choice in enumerate(value) if _value_problem(choice, kind, {})]
            for i in bad[:10]:
                problems.append(
                    {
                        "field": f"{where}.choices[{i}]",
                        "message": f"must be {_ARTICLE[kind]} like the default, "
                        f"got {describe_value(value[i])}",
                    }
                )
            if bad:
                broken = True
            else:
                clean["choices"] = list(value)
    if "min" in clean and "max" in clean and clean["min"] > clean["max"]:
        low, high = describe_value(clean["min"]), describe_value(clean["max"])
        problems.append({"field": where, "message": f"min ({low}) is greater than max ({high})"})
        broken = True
    if broken:
        return None
    wrong = _value_problem(default, kind, clean)
    if wrong:
        problems.append({"field": where, "message": f"the default does not fit: {wrong}"})
        return None
    return clean


def validate_options_document(doc: Any) -> dict[str, dict[str, Any]]:
    """Validate an options document and return a normalized copy with all five sections."""
    return check_options_document(doc)[0]


def check_options_document(doc: Any) -> tuple[dict[str, dict[str, Any]], Problems]:
    """Validate an options document; return a normalized copy with all five sections and the
    warnings about what was accepted but left out.

    A description of a name no longer declared (a stale line, common in documents written for
    the original system) is such a warning: the document is stored without it.
    """
    if not isinstance(doc, dict):
        raise ValidationError(
            [{"field": "", "message": f"options must be a JSON object, got {_type_name(doc)}"}]
        )
    problems: Problems = []
    warnings: Problems = []
    sections: dict[str, dict[str, Any]] = {}
    for key, value in doc.items():
        if key not in SECTIONS:
            problems.append(
                {
                    "field": _short(str(key)),
                    "message": "unknown section; expected one of " + ", ".join(SECTIONS),
                }
            )
        elif not isinstance(value, dict):
            problems.append(
                {"field": key, "message": f"must be an object, got {_type_name(value)}"}
            )
        else:
            sections[key] = value

    declared: dict[str, str] = {}  # option name -> its category
    types: dict[str, str] = {}
    out: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for category in CATEGORIES:
        for name, default in sections.get(category, {}).items():
            where = f"{category}.{_short(name)}"
            if len(name) > MAX_NAME_LENGTH:
                problems.append(
                    {
                        "field": where,
                        "message": f"option name is longer than {MAX_NAME_LENGTH} characters",
                    }
                )
                continue
            if not OPTION_NAME.matches(name):
                problems.append({"field": where, "message": f"option name {OPTION_NAME.message}"})
                continue
            if name in declared:
                problems.append(
                    {"field": where, "message": f"option is also declared in {declared[name]}"}
                )
                continue
            kind = option_type(default)
            if kind is None:
                problems.append(
                    {
                        "field": where,
                        "message": "default must be an integer, number, boolean or "
                        f"string, got {_type_name(default)}",
                    }
                )
                continue
            wrong = _value_problem(default, kind, {})
            if wrong:
                problems.append({"field": where, "message": f"default {wrong}"})
                continue
            declared[name] = category
            types[name] = kind
            out[category][name] = default

    total = sum(len(sections.get(c, {})) for c in CATEGORIES)
    if total > MAX_OPTIONS:
        problems.append(
            {"field": "", "message": f"too many options: {total}; the maximum is {MAX_OPTIONS}"}
        )

    # `slaves` and `slaves.number` cannot both exist: `{{ slaves.number }}` needs `slaves` to be
    # a mapping, so the nested names of the context could not hold both.
    for name in declared:
        parts = name.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix in declared:
                problems.append(
                    {
                        "field": f"{declared[name]}.{name}",
                        "message": f"conflicts with option {prefix!r}: a name cannot be "
                        "both an option and the prefix of another",
                    }
                )
                break

    for name, text in sections.get("descriptions", {}).items():
        where = f"descriptions.{_short(name)}"
        if name not in declared:
            warnings.append({"field": where, "message": "describes an undeclared option; left out"})
        elif not isinstance(text, str):
            problems.append(
                {"field": where, "message": f"must be a string, got {_type_name(text)}"}
            )
        elif len(text) > MAX_DESCRIPTION_LENGTH:
            problems.append(
                {"field": where, "message": f"must be at most {MAX_DESCRIPTION_LENGTH} characters"}
            )
        else:
            out["descriptions"][name] = text

    for name, spec in sections.get("limits", {}).items():
        if name not in declared:
            problems.append(
                {"field": f"limits.{_short(name)}", "message": "limits an undeclared option"}
            )
            continue
        default = out[declared[name]][name]
        clean = _check_limits(name, spec, types[name], default, problems)
        if clean is not None:
            out["limits"][name] = clean

    if problems:
        raise ValidationError(_capped(problems))
    return out, _capped(warnings)


def _capped(problems: Problems) -> Problems:
    """Keep the problem list readable when the input is abusive."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    extra = len(problems) - MAX_PROBLEMS
    return [*problems[:MAX_PROBLEMS], {"field": "", "message": f"and {extra} more problems"}]


def option_defaults(doc: dict[str, Any]) -> dict[str, Any]:
    """Return the flat option name -> default mapping of a normalized document."""
    defaults: dict[str, Any] = {}
    for category in CATEGORIES:
        defaults.update(doc.get(category) or {})
    return defaults


def option_types(doc: dict[str, Any]) -> dict[str, str]:
    """Return option name -> "integer" | "number" | "boolean" | "string"."""
    return {name: option_type(value) or "string" for name, value in option_defaults(doc).items()}


def merge_options(doc: dict[str, Any], values: Any) -> dict[str, Any]:
    """Validate launch values against a normalized document; return defaults overridden."""
    if not isinstance(values, dict):
        raise ValidationError(
            [
                {
                    "field": "",
                    "message": f"launch options must be a JSON object, got {_type_name(values)}",
                }
            ]
        )
    defaults = option_defaults(doc)
    types = option_types(doc)
    limits = doc.get("limits") or {}
    problems: Problems = []
    for name, value in values.items():
        if name not in defaults:
            message = "unknown option"
            # difflib is quadratic; only suggest for names that could be real, and only
            # in the problems reported (a 1 MB body of unknown keys must stay cheap).
            if (
                isinstance(name, str)
                and len(name) <= MAX_NAME_LENGTH
                and len(problems) < MAX_PROBLEMS
            ):
                close = difflib.get_close_matches(name, list(defaults), n=1)
                if close:
                    message += f"; did you mean {close[0]!r}?"
            problems.append({"field": _short(str(name)), "message": message})
            continue
        wrong = _value_problem(value, types[name], limits.get(name) or {})
        if wrong:
            problems.append({"field": name, "message": wrong})
    if problems:
        raise ValidationError(_capped(problems))
    merged = dict(defaults)
    merged.update(values)
    return merged
