"""The web console under /console: server-rendered pages over the operations layer.

HTTP only, like ``api/``: each page calls the same use cases (``operations``) the REST API
calls, with the same ``Caller``, so a user sees exactly what the API would show them (another
user's instance is a 404; admin pages are a 404 too). It authenticates by a session cookie made
from a bearer token (``console.session``), not by the Authorization header, and answers HTML.
Every asset is served from this package: no CDN, and a Content-Security-Policy says so.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, request

PREFIX = "/console"

#: what a console page may load: only this origin, no inline script or style, no framing
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

bp = Blueprint(
    "console",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


@bp.after_request
def _secure_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "console.static":
        # pages hold a CSRF token and, once, a new user's token: never from a cache
        response.headers["Cache-Control"] = "no-store"
    return response


def init_console(app: Flask) -> None:
    """Mount the console at /console and give it its session."""
    # the modules put their routes on ``bp`` as they are imported (once per process)
    from bigdata_paas.console import admin, pages  # noqa: F401
    from bigdata_paas.console.session import init_session

    init_session(app)
    app.register_blueprint(bp, url_prefix=PREFIX)
