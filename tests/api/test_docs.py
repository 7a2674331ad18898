"""/docs works on a machine without internet: Swagger UI's files come from the app itself."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from werkzeug.serving import make_server

from tests.api.support import API
from tests.conftest import ADMIN_TOKEN, free_port

DOCS = f"{API}/docs"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"me:{ADMIN_TOKEN}".encode()).decode()}


class Assets(HTMLParser):
    """Every URL a page names in a src or href attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def named_urls(html: str) -> list[str]:
    parser = Assets()
    parser.feed(html)
    return parser.urls


def test_the_docs_page_names_no_external_url_and_every_asset_answers(client):
    page = client.get(DOCS, headers=BASIC)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert not re.search(r"(https?:)?//", html), "the page names a URL of another host"
    urls = named_urls(html)
    assert len(urls) == 3, urls  # swagger-ui.css, the standalone preset, the bundle
    for url in urls:
        assert not urlsplit(url).netloc, url
        with client.get(urljoin(DOCS, url), headers=BASIC) as answer:
            assert answer.status_code == 200, url
            assert answer.mimetype in ("text/css", "text/javascript"), (url, answer.mimetype)
            assert len(answer.get_data()) > 100_000, url  # the real files, not a stub
    assert client.get(f"{API}/openapi.json", headers=BASIC).status_code == 200


def test_the_docs_assets_need_the_token_like_the_page(client):
    for path in (DOCS, f"{DOCS}/assets/swagger-ui-bundle.js"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="bigdata-paas"'
        bad = {"Authorization": "Basic " + base64.b64encode(b"me:wrong").decode()}
        assert client.get(path, headers=bad).status_code == 401


@pytest.mark.parametrize(
    "name",
    ["index.html", "../../../../etc/passwd", "..%2f..%2fswagger_ui_bundle%2f__init__.py", "x.js"],
)
def test_only_swagger_ui_files_are_served(client, name):
    assert client.get(f"{DOCS}/assets/{name}", headers=BASIC).status_code == 404


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium")
def test_a_browser_without_internet_renders_the_docs(app):
    """Chromium, every host name but 127.0.0.1 unresolvable, shows the API's operations.

    The browser's user types the token into the Basic prompt; here a wrapper adds the same
    header (credentials in the URL would stop the page's own fetch of openapi.json).
    """
    seen: list[str] = []

    def signed_in(environ, start_response):
        seen.append(environ["PATH_INFO"])
        environ["HTTP_AUTHORIZATION"] = BASIC["Authorization"]
        return app(environ, start_response)

    port = free_port()
    server = make_server("127.0.0.1", port, signed_in, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dom = subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"http://127.0.0.1:{port}{DOCS}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert "Failed to load API definition" not in dom
    assert f"{API}/openapi.json" in seen
    rendered = set(re.findall(r'data-path="([^"]+)"', dom))
    assert f"{API}/services/{{name}}/{{version}}" in rendered, sorted(rendered)[:5]
    assert f"{API}/instances/{{instance_id}}/logs" in rendered
