"""Helpers shared by the resource blueprints: the body reader, the arguments parser, and
the documentation of error answers."""

from __future__ import annotations

import json
from typing import Any

import flask_smorest
from flask import Response, current_app, g, request
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import RequestEntityTooLarge

from bigdata_paas.api.schemas import OptionValues, invalid
from bigdata_paas.errors import PaasError, ValidationError
from bigdata_paas.operations.users import Caller
from bigdata_paas.runtime import Runtime


class UnsupportedMediaType(PaasError):
    status = 415
    code = "unsupported_media_type"


def runtime() -> Runtime:
    return current_app.extensions["paas"]


def text_answer(text: str, content_type: str) -> Response:
    """A 200 of raw text (a template, a script), sent as it is, not through a schema."""
    return current_app.response_class(text, 200, {"Content-Type": content_type})


def caller() -> Caller:
    """Who sends this request (set by the token check, api/auth.py)."""
    return g.user


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


class Parser(FlaskParser):
    """webargs' parser with this API's rules: JSON bodies are read by ``json_body`` (415 for
    another type, 413 for too large, NUL and lone surrogates refused, no NaN), and every
    problem of a request is one 400 ``invalid_input`` in the envelope, each naming its field.
    """

    DEFAULT_VALIDATION_STATUS = 400

    def load_json(self, req, schema):
        # a launch's options may be left out: an empty body is {} (the defaults); so may
        # a body whose schema says ``EMPTY_BODY = {}`` (every field optional)
        empty = {} if isinstance(schema, OptionValues) else getattr(schema, "EMPTY_BODY", None)
        return json_body(empty=empty)

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        # webargs files the problems under their location ({"json": {...}}), one per parse
        (messages,) = error.messages.values()
        raise invalid(messages)


class Blueprint(flask_smorest.Blueprint):
    """A resource's blueprint, its arguments checked by ``Parser``."""

    ARGUMENTS_PARSER = Parser()


def _header(description: str, required: bool = True) -> dict:
    return {"description": description, "required": required, "schema": {"type": "string"}}


#: the Location of what a 201 or 202 created
LOCATION = {"Location": _header("URL of the created resource")}
WWW_AUTHENTICATE = {"WWW-Authenticate": _header("the Bearer challenge")}
RETRY_AFTER = {"Retry-After": _header("seconds to wait before trying again")}

HTTP_TEXT = {
    400: "invalid input (every problem listed, each with its field)",
    401: "no or bad token",
    403: "admin role needed, or over quota (quota_exceeded)",
    404: "not found",
    409: "conflict",
    413: "body too large",
    415: "not JSON",
    422: "template does not render",
    503: "broker or database unreachable; nothing was changed",
}


def errors(*statuses: int) -> dict:
    """``@blp.doc`` arguments documenting the error answers ``statuses``, each the envelope.

    A route that reads a JSON body (415) also refuses one too large (413).
    """
    if 415 in statuses and 413 not in statuses:
        statuses = (*statuses, 413)
    out: dict = {}
    for status in statuses:
        out[status] = {
            "description": HTTP_TEXT.get(status, "error"),
            "content": {"application/json": {"schema": "ErrorEnvelope"}},
        }
        if status == 401:
            out[status]["headers"] = WWW_AUTHENTICATE
        if status == 503:
            out[status]["headers"] = RETRY_AFTER
    return {"responses": out}


def doc_body(schema, description: str = "", content_type: str = "application/json") -> dict:
    """``@blp.doc`` arguments for a body a view reads itself: a raw text (template,
    orquestrator), or a document an operation checks (options)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {content_type: {"schema": schema}},
        }
    }
