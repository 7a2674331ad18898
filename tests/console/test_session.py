"""Signing in and out of the console, its cookie, and the CSRF check on every POST."""

from __future__ import annotations

import re

import pytest

from bigdata_paas.operations.users import ensure_admin
from tests.conftest import ADMIN_TOKEN
from tests.console.support import Console


def test_pages_need_a_session_and_send_the_user_to_sign_in(app):
    console = Console(app)
    for path in ("/console/", "/console/services", "/console/instances", "/console/admin/hosts"):
        response = console.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/console/login")
    # what scripts call answers 401, not a page
    for path in ("/console/events/stream", "/console/instances/x/live"):
        assert console.get(path).status_code == 401, path
    # a bearer token is no console session, and the console's session is no API credential
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert console.get("/console/services", headers=headers).status_code == 302


def test_no_console_route_answers_without_a_session(app):
    routes = sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.")
        and rule.endpoint not in ("console.sign_in", "console.static")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    )
    assert len(routes) >= 20
    for method, rule in routes:
        path = re.sub(r"<[^>]+>", "x", rule)
        response = Console(app).client.open(path, method=method, data={"token": ADMIN_TOKEN})
        if method == "POST":
            assert response.status_code == 400, path  # no session, no CSRF token: refused first
        elif response.status_code != 401:
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith("/console/login?next=/console/")


def test_sign_in_sets_a_strict_http_only_cookie_that_does_not_hold_the_token(app):
    console = Console(app)
    response = console.sign_in(ADMIN_TOKEN, next_path="/console/services")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/services"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("paas_console=")
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/console"):
        assert flag in cookie, cookie
    assert "Secure" not in cookie  # plain http here: a Secure cookie would never come back
    assert ADMIN_TOKEN not in cookie
    page = console.page("/console/services")
    assert 'id="who">admin (admin)' in page


def test_over_https_the_cookie_is_secure(app):
    client = app.test_client()
    page = client.get("/console/login", base_url="https://paas.example")
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post(
        "/console/login",
        data={"token": ADMIN_TOKEN, "csrf_token": token},
        base_url="https://paas.example",
    )
    assert response.status_code == 302
    assert "; Secure" in response.headers["Set-Cookie"]


def test_a_wrong_token_is_refused_on_the_form(app):
    console = Console(app)
    response = console.sign_in("not-a-token")
    assert response.status_code == 401
    assert "This token is not valid." in response.get_data(as_text=True)
    assert console.get("/console/services").status_code == 302


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/bigdata/api/v1/users"],
)
def test_sign_in_goes_back_only_to_a_console_page(app, target):
    response = Console(app).sign_in(ADMIN_TOKEN, next_path=target)
    assert response.headers["Location"] == "/console/instances"


def test_every_post_needs_the_session_csrf_token(app, admin_console):
    rt = app.extensions["paas"]
    for path, data in (
        ("/console/admin/users", {"name": "mallory", "role": "admin"}),
        ("/console/logout", {}),
        ("/console/login", {"token": ADMIN_TOKEN}),
    ):
        missing = admin_console.post(path, data, csrf=False)
        assert missing.status_code == 400, path
        assert "reload the page" in missing.get_data(as_text=True)
        wrong = admin_console.post(path, {**data, "csrf_token": "x" * 43}, csrf=False)
        assert wrong.status_code == 400, path
    # nothing happened: no user made, still signed in
    from bigdata_paas.operations.users import list_users

    assert [u["name"] for u in list_users(rt)] == ["admin"]
    assert admin_console.get("/console/services").status_code == 200


def test_another_session_csrf_token_is_refused(app, admin_console):
    other = Console(app)
    other.sign_in(ADMIN_TOKEN)
    response = admin_console.post(
        "/console/admin/users", {"name": "mallory", "csrf_token": other.current_csrf()}, csrf=False
    )
    assert response.status_code == 400


def test_sign_out_ends_the_session(admin_console):
    response = admin_console.post("/console/logout")
    assert response.status_code == 302
    assert "paas_console=;" in response.headers["Set-Cookie"]
    assert admin_console.get("/console/services").status_code == 302


def test_a_replaced_token_ends_the_session(app, admin_console):
    ensure_admin(app.extensions["paas"], "another-admin-token-" + "y" * 20)
    assert admin_console.get("/console/services").status_code == 302


def test_pages_send_a_content_security_policy_that_forbids_other_origins(admin_console):
    for path in ("/console/login", "/console/services", "/console/static/console.js"):
        with admin_console.get(path) as response:
            policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert "http" not in policy and "unsafe-inline" not in policy
    page = admin_console.page("/console/instances")
    assert "<script>" not in page and " on" + "click=" not in page
    assert "http://" not in page and "https://" not in page
    with admin_console.get("/console/static/console.js") as js:
        assert js.status_code == 200 and "EventSource" in js.get_data(as_text=True)


def test_a_disabled_user_is_signed_out_and_told_why_on_the_form(app, make_user):
    """A session lasts only while its token works: disabling the user ends it, and signing in
    again says why instead of 'not valid'."""
    from bigdata_paas.operations.users import set_disabled
    from tests.console.support import token_of

    token = token_of(make_user("carol"))
    console = Console(app)
    assert console.sign_in(token).status_code == 302
    assert console.get("/console/services").status_code == 200
    set_disabled(app.extensions["paas"], "admin", "carol", True)
    assert console.get("/console/services").status_code == 302
    response = console.sign_in(token)
    assert response.status_code == 401
    assert "disabled" in response.get_data(as_text=True)
    assert console.get("/console/services").status_code == 302


def test_console_admin_actions_are_audited_as_the_signed_in_admin(app, make_user):
    from bigdata_paas.operations import audit
    from tests.console.support import token_of

    ensure_admin(app.extensions["paas"], ADMIN_TOKEN)
    token = token_of(make_user("root2", role="admin"))
    console = Console(app)
    assert console.sign_in(token).status_code == 302
    assert console.post("/console/admin/users", {"name": "dave", "role": "user"}).status_code == 201
    entries = audit.list_events(app.extensions["paas"], target="user:dave")["items"]
    assert [(e["actor"], e["action"]) for e in entries] == [("root2", "user.created")]
