"""Helpers shared by the resource blueprints."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from bigdata_paas.errors import PaasError, ValidationError
from bigdata_paas.runtime import Runtime


class UnsupportedMediaType(PaasError):
    status = 415
    code = "unsupported_media_type"


def runtime() -> Runtime:
    return current_app.extensions["paas"]


def json_body(*, empty: Any = None) -> Any:
    """Parse the request body as JSON; ``empty`` is returned for an empty body if given."""
    content_type = request.mimetype
    raw = request.get_data(cache=True)
    if not raw.strip() and empty is not None:
        return empty
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType(f"expected Content-Type: application/json, got {content_type}")
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise ValidationError(f"body is not valid JSON: {reason}", field="body") from None


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def responses(*pairs, errors: tuple[int, ...] = (400, 401)) -> dict:
    """OpenAPI responses: (status, schema or None, description) pairs plus error statuses."""
    out: dict = {}
    for status, schema, description in pairs:
        out[str(status)] = {"description": description}
        if schema is not None:
            out[str(status)]["content"] = {"application/json": {"schema": schema}}
    for status in errors:
        out[str(status)] = {
            "description": HTTP_TEXT.get(status, "error"),
            "content": {"application/json": {"schema": "ErrorEnvelope"}},
        }
    return {"responses": out}


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
