"""One JSON error envelope for every failure: domain errors, HTTP errors, the unexpected."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from bigdata_paas.errors import PaasError, Unavailable

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def envelope(status: int, code: str, message: str, details=None, headers=None):
    body: dict[str, Any] = {"error": {"code": code, "message": message}, "status": status}
    if details is not None:
        body["error"]["details"] = details
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def init_errors(app: Flask) -> None:
    @app.errorhandler(PaasError)
    def domain_error(exc: PaasError):
        headers = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="bigdata-paas"'
        if isinstance(exc, Unavailable):
            headers["Retry-After"] = str(exc.retry_after)
        return envelope(exc.status, exc.code, exc.message, exc.details, headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body is larger than the limit of {limit} bytes"
        headers = {}
        if status == 405 and exc.get_response().headers.get("Allow"):
            headers["Allow"] = exc.get_response().headers["Allow"]
        return envelope(status, HTTP_CODES.get(status, "http_error"), message, None, headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return envelope(500, "internal_error", "internal error; the operators have the details")
