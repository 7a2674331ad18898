"""The pieces every schema of the API is made of: name and count fields, query integers,
strict bodies, and the problems a refused request lists (every one at once, each naming
its field)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, AnyStr

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    missing,
    validate,
)

from bigdata_paas import errors
from bigdata_paas.names import NameRule

#: the most problems one answer lists; the rest are counted
MAX_PROBLEMS = 200
#: the longest field path an answer names (a 10 KB key is named by its start)
MAX_FIELD = 200


class Matches(validate.Regexp):
    """The whole value is a name of ``rule``'s kind (bigdata_paas/names.py): checked with the
    rule, documented as the rule's ``pattern``, refused with the rule's words."""

    def __init__(self, rule: NameRule) -> None:
        super().__init__(rule.pattern)
        self.rule = rule

    def __call__(self, value: AnyStr) -> AnyStr:
        if not self.rule.matches(value):
            raise ValidationError(self.rule.message)
        return value


def name_field(rule: NameRule, **kwargs) -> fields.String:
    return fields.String(validate=Matches(rule), **kwargs)


class QueryInteger(fields.Integer):
    """A whole number; in a query string ASCII digits only (``int()`` also reads fullwidth digits,
    ``"1_000"`` and ``" 1"``), in a JSON body an integer (not ``2.0``, not ``"2"``)."""

    default_error_messages = {"invalid": "must be a whole number"}

    def __init__(self, **kwargs) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, str):
            if not (value.isascii() and value.isdigit() and len(value) <= 18):
                raise self.make_error("invalid", input=value)
            value = int(value)
        return super()._validated(value)


#: the largest count a column holds (32-bit)
MAX_COUNT = 2**31 - 1


def count_field(low: int, high: int = MAX_COUNT, **kwargs) -> fields.Integer:
    """A JSON integer from ``low`` to ``high``."""
    error = f"must be an integer >= {low}" if high == MAX_COUNT else f"must be {low}..{high}"
    return fields.Integer(strict=True, validate=validate.Range(low, high, error=error), **kwargs)


class Strict(Schema):
    """A request shape: fields it does not name are refused, each named."""

    error_messages = {"type": "must be a JSON object", "unknown": "unknown field"}

    class Meta:
        unknown = RAISE


def problems(messages: Any, where: str = "") -> list[dict[str, str]]:
    """marshmallow's nested error messages as the envelope's flat list of problems.

    ``{"disks": {0: {"name": ["..."]}}}`` is ``disks[0].name``; errors of a whole
    document (``_schema``) name the field it sits in, and ``""`` for the body itself.
    """
    found: list[dict[str, str]] = []
    stack = [(where, messages)]
    while stack:
        path, item = stack.pop(0)
        if isinstance(item, dict):
            # a Dict field's entry: {"key": [...], "value": [...]} belongs to the entry
            if item and set(item) <= {"key", "value"} and path:
                for part in ("key", "value"):
                    if part in item:
                        stack.append((path, item[part]))
                continue
            for key, value in item.items():
                if key == "_schema":  # the whole document (field ""), or the field it sits in
                    stack.append((path, value))
                elif isinstance(key, int):
                    stack.append((f"{path}[{key}]", value))
                else:
                    stack.append((f"{path}.{key}" if path else str(key), value))
        elif isinstance(item, list):
            for message in item:
                if isinstance(message, (dict, list)):
                    stack.append((path, message))
                else:
                    found.append({"field": path[:MAX_FIELD], "message": str(message)})
        else:
            found.append({"field": path[:MAX_FIELD], "message": str(item)})
    if len(found) > MAX_PROBLEMS:
        extra = len(found) - MAX_PROBLEMS
        found = [*found[:MAX_PROBLEMS], {"field": "", "message": f"and {extra} more problems"}]
    return found


def invalid(messages: Any) -> errors.ValidationError:
    """The domain's 400 for marshmallow's error ``messages``: every problem, each with its
    field."""
    return errors.ValidationError(problems(messages) or [{"field": "", "message": "invalid"}])


def load(schema: type[Schema], data: Any) -> Any:
    """``data`` checked and completed with defaults by ``schema``; a domain ValidationError
    listing every problem otherwise (for the CLI, which reads API bodies from files)."""
    try:
        return schema().load(data)
    except ValidationError as error:
        raise invalid(error.messages) from None


class ErrorBody(Schema):
    code = fields.String(
        required=True, metadata={"description": "stable machine code, e.g. invalid_input"}
    )
    message = fields.String(
        required=True, metadata={"description": "what is wrong, naming the field"}
    )
    details = fields.Dict(
        metadata={"description": "for invalid_input: {problems: [{field, message}, ...]}"}
    )


class ErrorEnvelope(Schema):
    error = fields.Nested(ErrorBody, required=True)
    status = fields.Integer(required=True, metadata={"description": "the HTTP status again"})


class PageQuery(Schema):
    """``?page=&per_page=`` of a paginated list."""

    page = QueryInteger(
        load_default=1,
        validate=validate.Range(1, 10**6, error="must be an integer 1..{max}"),
        metadata={"description": "from 1"},
    )
    per_page = QueryInteger(
        validate=validate.Range(1, 500, error="must be an integer 1..{max}"),
        metadata={"description": "items per page, 1..500 (default PAAS_PAGE_SIZE)"},
    )


def fast_dump(schema: Schema) -> Callable[[Mapping], dict]:
    """``schema.dump`` of a dict, for a hot read: the same answer, key for key and in the same
    order, without marshmallow's machinery around every value (a 20-node instance is some 300
    values). Made from the schema itself, so that what the OpenAPI document says and what is
    sent cannot drift apart; it knows String, Integer, Dict, List and Nested fields and refuses
    any other here, when it is made (tests/unit/test_fast_dump.py compares both dumps)."""
    known = []
    for name, field in schema.dump_fields.items():
        source = field.attribute or name
        if "." in source or field.dump_default is not missing:
            raise TypeError(f"fast_dump: {name} has a dotted attribute or a dump default")
        known.append((source, field.data_key or name, _value_dump(field)))

    def dump(obj: Mapping) -> dict:
        out = {}
        for source, key, convert in known:
            if source in obj:
                value = obj[source]
                out[key] = None if value is None else convert(value)
        return out

    return dump


def _value_dump(field: fields.Field) -> Callable[[Any], Any]:
    """What ``field._serialize`` does to a value that is not None (the field's exact class:
    a subclass may serialize otherwise)."""
    exact = type(field)
    if exact is fields.String:
        return str
    if isinstance(field, fields.Integer) and exact is fields.Integer and not field.as_string:
        return int
    if isinstance(field, fields.Dict) and exact is fields.Dict:
        keys = _nullable(field.key_field)
        values = _nullable(field.value_field)
        if keys is None and values is None:
            return dict
        return lambda value: {
            (keys(k) if keys else k): (values(v) if values else v) for k, v in value.items()
        }
    if isinstance(field, fields.List) and exact is fields.List:
        inner = _nullable(field.inner)
        return lambda value: [inner(item) for item in value]  # type: ignore[misc]
    if isinstance(field, fields.Nested) and exact is fields.Nested:
        schema = field.schema
        if not (field.many or schema.many):
            return fast_dump(schema)
    raise TypeError(f"fast_dump: no fast path for {exact.__name__} fields")


def _nullable(field: fields.Field | None) -> Callable[[Any], Any] | None:
    if field is None:
        return None
    convert = _value_dump(field)
    return lambda value: None if value is None else convert(value)
