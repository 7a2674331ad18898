"""A service's options as a JSON Schema (draft 2020-12), derived from the options document.

The schema states the rules ``options.merge_options`` checks a launch with, from the same
constants and the same normalized document: an object of known options only
(``additionalProperties: false``), each of its default's type, within its limits (``min`` ->
``minimum``, ``max`` -> ``maximum``, ``choices`` -> ``enum``), a string at most
``MAX_STRING_LENGTH`` characters. Every option has a default, so none is ``required`` in the
JSON Schema sense: a launch with ``{}`` takes the defaults. The document's categories are
presentation; each property names its own in ``x-group`` (required, optional, advanced), and
``x-groups`` lists the names of each in order, for forms.

One difference cannot be stated: JSON Schema takes ``2.0`` as an integer (the same number as
``2``), and the launch refuses it for an integer option. A form or a client that sends the
integer it was given is never refused for that.
"""

from __future__ import annotations

from typing import Any

from bigdata_paas.rendering.options import (
    CATEGORIES,
    MAX_STRING_LENGTH,
    option_type,
    validate_options_document,
)

DRAFT = "https://json-schema.org/draft/2020-12/schema"

#: option limit -> JSON Schema keyword
LIMIT_KEYWORDS = {"min": "minimum", "max": "maximum", "choices": "enum"}


def option_property(
    default: Any, category: str, description: str | None, limits: dict[str, Any]
) -> dict[str, Any]:
    """The JSON Schema of one option."""
    kind = option_type(default)
    prop: dict[str, Any] = {"type": kind, "default": default, "x-group": category}
    if description:
        prop["description"] = description
    if kind == "string":
        prop["maxLength"] = MAX_STRING_LENGTH
    for limit, keyword in LIMIT_KEYWORDS.items():
        if limit in limits:
            prop[keyword] = limits[limit]
    return prop


def options_schema(document: Any, *, title: str | None = None) -> dict[str, Any]:
    """The JSON Schema of the launch options an options document allows."""
    doc = validate_options_document(document)  # normalized: all five sections, checked
    properties: dict[str, Any] = {}
    groups: dict[str, list[str]] = {}
    for category in CATEGORIES:
        groups[category] = list(doc[category])
        for name, default in doc[category].items():
            properties[name] = option_property(
                default, category, doc["descriptions"].get(name), doc["limits"].get(name, {})
            )
    schema: dict[str, Any] = {"$schema": DRAFT}
    if title:
        schema["title"] = title
    schema.update(
        {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
            "x-groups": groups,
        }
    )
    return schema
