"""The launch form, made from a service's options as a JSON Schema (``options_schema``).

Plain data in, plain data out: the fields of each group (required first, then optional and
advanced, which the page folds), each with the input its type needs, its description as help,
and its default or the value the user typed; then the typed option values read back from the
submitted form, and the problems of a launch put next to the field they name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: a form field's name is this prefix and the option's name (option names may be dotted)
PREFIX = "opt:"
GROUPS = ("required", "optional", "advanced")


@dataclass
class OptionField:
    name: str
    type: str
    default: Any
    group: str
    description: str = ""
    choices: list | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    value: Any = None
    errors: list[str] = field(default_factory=list)

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    @property
    def input_id(self) -> str:
        # option names have no "-": a dot becomes one, and ids stay unique
        return "opt-" + "".join(c if c.isalnum() or c == "_" else "-" for c in self.name)

    @property
    def shown(self) -> str:
        """The value as the input shows it."""
        value = self.default if self.value is None else self.value
        return str(value).lower() if isinstance(value, bool) else str(value)


def option_fields(schema: dict) -> dict[str, list[OptionField]]:
    """Every option of ``schema`` as a form field, by group, in the document's order."""
    properties = schema.get("properties", {})
    by_group: dict[str, list[OptionField]] = {group: [] for group in GROUPS}
    for group in GROUPS:
        for name in schema.get("x-groups", {}).get(group, []):
            prop = properties[name]
            by_group[group].append(
                OptionField(
                    name=name,
                    type=prop["type"],
                    default=prop["default"],
                    group=group,
                    description=prop.get("description", ""),
                    choices=prop.get("enum"),
                    minimum=prop.get("minimum"),
                    maximum=prop.get("maximum"),
                    max_length=prop.get("maxLength"),
                )
            )
    return by_group


def _read(option: OptionField, raw: str | None) -> tuple[Any, str | None]:
    """(typed value, problem) of one submitted input."""
    if option.type == "boolean":
        return raw is not None, None
    text = "" if raw is None else raw
    if option.type == "string":
        return text, None
    text = text.strip()
    try:
        if option.type == "integer":
            return int(text), None
        return float(text), None
    except ValueError:
        kind = "a whole number" if option.type == "integer" else "a number"
        return text, f"must be {kind}"


def read_form(fields: dict[str, list[OptionField]], form) -> tuple[dict, bool]:
    """Fill ``fields`` from the submitted ``form``; (the values to launch with, all readable).

    Only values that differ from their default are sent: the instance's options then say
    what the user chose, as a launch through the API would.
    """
    values: dict[str, Any] = {}
    readable = True
    for option in (o for group in fields.values() for o in group):
        value, problem = _read(option, form.get(option.input_name))
        option.value = value
        if problem:
            option.errors.append(problem)
            readable = False
        elif not (type(value) is type(option.default) and value == option.default):
            values[option.name] = value
    return values, readable


def place_problems(fields: dict[str, list[OptionField]], problems: list[dict]) -> list[str]:
    """Put each problem next to the field it names; return those that name no field."""
    by_name = {o.name: o for group in fields.values() for o in group}
    general = []
    for problem in problems:
        option = by_name.get(problem.get("field") or "")
        if option is not None:
            option.errors.append(problem["message"])
        else:
            where = problem.get("field")
            general.append(f"{where}: {problem['message']}" if where else problem["message"])
    return general
