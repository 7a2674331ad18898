"""Bearer-token authentication on every route but the health check and probes, and role checks."""

from __future__ import annotations

import base64
import binascii
import hmac
from functools import wraps

from flask import Flask, current_app, g, request

from bigdata_paas.errors import Forbidden, Unauthorized
from bigdata_paas.operations.instances import launch_read, seen_by
from bigdata_paas.operations.users import authenticate_riding

#: endpoints that answer without a token
PUBLIC_ENDPOINTS = {"health.health", "health.livez", "health.readyz", "static"}
#: endpoints that also take the metrics token (``PAAS_METRICS_TOKEN``), which is no user's
METRICS_ENDPOINTS = {"metrics.metrics"}
#: endpoints a browser opens: answer 401 with a Basic challenge so the browser asks for it
BROWSER_ENDPOINTS = {"api-docs.openapi_json", "api-docs.openapi_swagger_ui", "docs_assets.asset"}
#: endpoints whose first read rides on the token check's statement (users.Rider): the rider
#: for the request's view arguments; what it read is ``g.ridden``
RIDERS = {
    "instances.instance_detail": lambda args: seen_by(args["instance_id"]),
    "services.launch": lambda args: launch_read(args["name"], args["version"]),
}


def token_from_request() -> str | None:
    """Read ``Authorization: Bearer <token>``, or Basic with the token as password."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def is_metrics_token(token: str | None) -> bool:
    """Whether ``token`` is the metrics token (compared in constant time; none is set: no)."""
    expected = current_app.extensions["paas"].config.METRICS_TOKEN
    if not (expected and token):
        return False
    return hmac.compare_digest(token.encode(), expected.encode())


def init_auth(app: Flask) -> None:
    @app.before_request
    def require_token():
        if request.endpoint in PUBLIC_ENDPOINTS or request.blueprint == "console":
            return None  # the console signs its users in itself (console/session.py)
        token = token_from_request()
        if request.endpoint in METRICS_ENDPOINTS and is_metrics_token(token):
            g.user = None
            return None
        user = None
        if token:
            ride = RIDERS.get(request.endpoint)
            rider = ride(request.view_args) if ride and request.view_args else None
            user, g.ridden = authenticate_riding(current_app.extensions["paas"], token, rider)
        if user is None:
            if request.endpoint in BROWSER_ENDPOINTS:
                exc = Unauthorized("a bearer token is required (as the Basic password here)")
                from bigdata_paas.api.errors import envelope

                return envelope(
                    401,
                    exc.code,
                    exc.message,
                    None,
                    {"WWW-Authenticate": 'Basic realm="bigdata-paas"'},
                )
            raise Unauthorized(
                "missing or invalid bearer token"
                if token or request.headers.get("Authorization")
                else "authentication required: send Authorization: Bearer <token>"
            )
        g.user = user
        return None


def admin_required(view):
    """Refuse the view to users who are not admins."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not g.user.is_admin:
            raise Forbidden("this operation needs the admin role")
        return view(*args, **kwargs)

    return wrapper
