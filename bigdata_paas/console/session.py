"""Signing in to the console: a bearer token in, a session cookie out; CSRF on every POST.

The cookie is Flask's signed session (key: ``credentials.console_secret_key``), HttpOnly,
SameSite=Strict, scoped to /console, and Secure whenever the request came over https. It holds
the digest of the token (``operations.sessions``), never the token: a stolen cookie is no API
credential, and a token replaced since the sign-in ends the session at the next request.

Every POST carries the session's CSRF token in the form field ``csrf_token``; one without it, or
with another, is refused (400) before the view runs. The sign-in form has one too: the session
(and its CSRF token) exists from the first page, and signing in starts a fresh one.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Flask,
    Request,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from bigdata_paas.console import bp
from bigdata_paas.credentials import console_secret_key
from bigdata_paas.errors import Unauthorized
from bigdata_paas.operations.sessions import open_session, session_caller

#: console endpoints that answer without a signed-in user
OPEN_ENDPOINTS = {"console.sign_in", "console.static"}
#: endpoints scripts call: a 401, not a redirect to the sign-in page
SCRIPT_ENDPOINTS = {
    "console.instance_live",
    "console.instance_events_stream",
    "console.instance_logs_stream",
    "console.all_events_stream",
}
#: how long a session lasts without signing in again
LIFETIME = timedelta(hours=12)


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the page came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)

    def open_session(self, app: Flask, incoming: Request) -> SecureCookieSession | None:
        # Flask opens it for every request; the API's never carry the cookie (its path is
        # /console): their empty session, without building the signer for each
        if app.secret_key and self.get_cookie_name(app) not in incoming.cookies:
            return self.session_class()
        return super().open_session(app, incoming)


@bp.app_template_global()
def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf")
    if not expected or not secrets.compare_digest(sent.encode(), expected.encode()):
        abort(400, "the form expired or did not come from this console: reload the page")


def init_session(app: Flask) -> None:
    """Sign the app's session cookies with the console's key, and set the cookie's flags."""
    app.secret_key = console_secret_key(app.extensions["paas"].config)
    app.session_interface = ConsoleSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="paas_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=LIFETIME,
    )


@bp.before_request
def load_user():
    """Who this session is (``g.user``, as the API's token check sets it); POSTs checked."""
    digest = session.get("token")
    g.user = session_caller(current_app.extensions["paas"], digest) if digest else None
    if digest and g.user is None:
        session.clear()
    if request.method == "POST":
        check_csrf()
    if g.user is None and request.endpoint not in OPEN_ENDPOINTS:
        if request.endpoint in SCRIPT_ENDPOINTS:
            abort(401, "sign in again")
        return redirect(url_for("console.sign_in", next=request.full_path.rstrip("?")))
    return None


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (no other site, no scheme)."""
    target = target or ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/"):
        return url_for("console.instances")
    if "\\" in target or target.startswith("//"):
        return url_for("console.instances")
    return target


@bp.route("/login", methods=["GET", "POST"])
def sign_in():
    """Take a bearer token; open a session for its user."""
    error = None
    if request.method == "POST":
        token = request.form.get("token", "").strip()
        try:
            opened = open_session(current_app.extensions["paas"], token) if token else None
        except Unauthorized as exc:  # a disabled user, an expired token: say which
            opened, refused = None, exc.message
        else:
            refused = None
        if opened is not None:
            _user, digest = opened
            session.clear()  # a fresh session: nothing from before the sign-in carries over
            session.permanent = True
            session["token"] = digest
            csrf_token()
            return redirect(safe_next(request.args.get("next")))
        error = refused or ("This token is not valid." if token else "Paste your bearer token.")
    elif g.user is not None:
        return redirect(safe_next(request.args.get("next")))
    status = 401 if error else 200
    return render_template("console/sign_in.html", error=error), status


@bp.route("/logout", methods=["POST"])
def sign_out():
    session.clear()
    return redirect(url_for("console.sign_in"))
