"""Helpers shared by the resource blueprints."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from bigdata_paas.errors import PaasError, ValidationError
from bigdata_paas.runtime import Runtime


class UnsupportedMediaType(PaasError):
    status = 415
    code = "unsupported_media_type"


def runtime() -> Runtime:
    return current_app.extensions["paas"]


def read_body(*, cache: bool = True) -> bytes:
    """The request body; 413 when it is larger than MAX_CONTENT_LENGTH.

    Werkzeug refuses a declared Content-Length over the limit, but a chunked body (no length)
    is only cut at the limit: a body that fills it was longer, and is refused, not truncated.
    """
    raw = request.get_data(cache=cache)
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if request.content_length is None and limit is not None and len(raw) >= limit:
        raise RequestEntityTooLarge()
    return raw


def json_body(*, empty: Any = None, also: tuple[str, ...] = ()) -> Any:
    """Parse the request body as JSON; ``empty`` is returned for an empty body if given.

    A body with no Content-Type, a JSON type or one of the types in ``also`` is read as JSON.
    """
    content_type = request.mimetype
    raw = read_body()
    if not raw.strip() and empty is not None:
        return empty
    if (
        content_type
        and content_type not in also
        and content_type != "application/json"
        and not content_type.endswith("+json")
    ):
        raise UnsupportedMediaType(f"expected Content-Type: application/json, got {content_type}")
    try:
        body = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise ValidationError(f"body is not valid JSON: {reason}", field="body") from None
    _refuse_unstorable_text(body)
    return body


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored: NUL (PostgreSQL refuses it) or a lone surrogate
    (``"\\ud800"`` is valid JSON but no UTF-8 text); None when it can."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"must not contain lone surrogates ({text[exc.start : exc.end]!r})"
    return None


def _refuse_unstorable_text(body: Any) -> None:
    """Refuse a body with a string or key no database column could store, naming where."""
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise ValidationError(problem, field=where[:200] or "body")
        elif isinstance(item, dict):
            for key, value in item.items():
                problem = text_problem(key)
                if problem:
                    raise ValidationError(f"a key {problem}", field=where[:200] or "body")
                stack.append((f"{where}.{key}" if where else key, value))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", value) for i, value in enumerate(item))


def refuse_nul_in_url() -> None:
    """Refuse NUL in a path parameter or the query string: a 400, not a database error."""
    for source, values in (
        ("path", (request.view_args or {}).items()),
        ("query", request.args.items(multi=True)),
    ):
        for name, value in values:
            for text in (name, value):
                if isinstance(text, str) and "\x00" in text:
                    raise ValidationError(
                        f"{source} parameter must not contain NUL characters",
                        field=name[:100].replace("\x00", "\\0"),
                    )


def responses(
    *pairs, errors: tuple[int, ...] = (400, 401), headers: dict[int, dict] | None = None
) -> dict:
    """OpenAPI responses: (status, schema or None, description) pairs plus error statuses.

    ``headers`` maps a status to the response headers it carries (``LOCATION`` ...).
    """
    out: dict = {}
    for status, schema, description in pairs:
        out[str(status)] = {"description": description}
        if schema is not None:
            out[str(status)]["content"] = {"application/json": {"schema": schema}}
    if 415 in errors and 413 not in errors:
        errors = (*errors, 413)  # a route that reads a JSON body also refuses one too large
    for status in errors:
        out[str(status)] = {
            "description": HTTP_TEXT.get(status, "error"),
            "content": {"application/json": {"schema": "ErrorEnvelope"}},
        }
    if "401" in out:
        out["401"]["headers"] = WWW_AUTHENTICATE
    for status, declared in (headers or {}).items():
        out[str(status)]["headers"] = declared
    return {"responses": out}


def _header(description: str, required: bool = True) -> dict:
    return {"description": description, "required": required, "schema": {"type": "string"}}


#: the Location of what a 201 or 202 created
LOCATION = {"Location": _header("URL of the created resource")}
WWW_AUTHENTICATE = {"WWW-Authenticate": _header("the Bearer challenge")}


HTTP_TEXT = {
    400: "invalid input (every problem listed)",
    401: "no or bad token",
    403: "admin role needed",
    404: "not found",
    409: "conflict",
    413: "body too large",
    415: "not JSON",
    422: "template does not render",
    503: "broker or database unreachable",
}


def doc_body(schema, description: str = "", content_type: str = "application/json") -> dict:
    """An OpenAPI requestBody for a view that validates its body itself."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {content_type: {"schema": schema}},
        }
    }
