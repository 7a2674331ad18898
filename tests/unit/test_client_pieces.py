"""The client's pure pieces: the SSE reader, the API URL, durations, typed --set values, and
where the paas command finds its server and token (the file paas login writes: mode 0600)."""

from __future__ import annotations

import os
import stat

import click
import pytest

from bigdata_paas.client import api_url
from bigdata_paas.client.cli import DURATION, split_service, typed
from bigdata_paas.client.settings import config_path, load_file, resolve, save_file
from bigdata_paas.client.sse import ServerEvent, parse

# -- SSE --------------------------------------------------------------------------------------


def test_sse_messages_comments_ids_and_multi_line_data():
    text = (
        "retry: 2000\n\n"
        ": keep-alive\n\n"
        'id: 7\nevent: queued\ndata: {"a": 1}\n\n'
        "data: line one\ndata:line two\n\n"  # no id: keeps the last one; no event: message
        "id: 9\n\n"  # an id alone moves the cursor
        "event: ignored\n\n"  # nothing to dispatch
        "id: 10\ndata: x"  # cut before its blank line: never dispatched
    )
    assert list(parse(text.split("\n"))) == [
        ServerEvent(None, "", "", 2000),
        ServerEvent("7", "queued", '{"a": 1}'),
        ServerEvent("7", "message", "line one\nline two"),
        ServerEvent("9", "", ""),
    ]


def test_sse_ignores_ids_with_nul_and_bad_retry():
    assert list(parse(["id: 1\0", "retry: soon", "data: x", ""])) == [
        ServerEvent(None, "message", "x")
    ]


# -- the API's address ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000/bigdata/api/v1"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000/bigdata/api/v1"),
        ("http://127.0.0.1:5000/bigdata/api/v1", "http://127.0.0.1:5000/bigdata/api/v1"),
        ("http://127.0.0.1:5000/bigdata/api/v1/", "http://127.0.0.1:5000/bigdata/api/v1"),
        ("127.0.0.1:5000", "http://127.0.0.1:5000/bigdata/api/v1"),
        ("https://paas.example/prefix", "https://paas.example/prefix/bigdata/api/v1"),
    ],
)
def test_api_url_adds_the_prefix_once(given, expected):
    assert api_url(given) == expected


def test_api_url_refuses_nothing():
    with pytest.raises(ValueError):
        api_url("  ")


# -- arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5", 5),
        ("5s", 5),
        ("90s", 90),
        ("30m", 1800),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("2d", 172800),
        ("1m30s", 90),
    ],
)
def test_durations(text, seconds):
    assert DURATION.convert(text, None, None) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "0", "0s", "5x", "m", "5 m", "-5s", "1h30", "inf", "1e9999h"])
def test_bad_durations(text):
    with pytest.raises(click.BadParameter):
        DURATION.convert(text, None, None)


def test_split_service():
    assert split_service("gluster/3.7.11") == ("gluster", "3.7.11")
    for bad in ("gluster", "/1", "gluster/", "a/b/c"):
        with pytest.raises(click.BadParameter):
            split_service(bad)


@pytest.mark.parametrize(
    ("prop", "text", "value"),
    [
        ({"type": "integer"}, "3", 3),
        ({"type": "integer"}, " -4 ", -4),
        ({"type": "number"}, "3", 3),
        ({"type": "number"}, "2.5", 2.5),
        ({"type": "boolean"}, "yes", True),
        ({"type": "boolean"}, "False", False),
        ({"type": "string"}, "3", "3"),
        ({"type": "string"}, "", ""),
        (None, "3", 3),  # not in the schema: JSON if it parses (the API names it)
        (None, "abc", "abc"),
    ],
)
def test_set_values_are_typed_by_the_schema(prop, text, value):
    got = typed("k", text, prop)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("prop", "text"),
    [
        ({"type": "integer"}, "3.0"),
        ({"type": "integer"}, "three"),
        ({"type": "number"}, "nan"),
        ({"type": "number"}, "inf"),
        ({"type": "boolean"}, "maybe"),
    ],
)
def test_set_values_of_the_wrong_type_are_usage_errors(prop, text):
    with pytest.raises(click.BadParameter) as exc:
        typed("slaves.number", text, prop)
    assert "slaves.number" in exc.value.message


# -- settings ---------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in ("PAAS_URL", "PAAS_TOKEN", "PAAS_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path


def test_saved_settings_are_private(home):
    path = save_file("http://127.0.0.1:5000", "secret-token")
    assert path == home / "xdg" / "paas" / "config.json" == config_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_file() == {"url": "http://127.0.0.1:5000", "token": "secret-token"}
    # saved again over a file someone widened: 0600 again (never a moment wider)
    os.chmod(path, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_file()
    save_file("http://other:5000", "t2")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temp file left


def test_options_then_environment_then_file(home, monkeypatch):
    assert resolve() == resolve(None, None)
    assert resolve().url is None and resolve().token is None
    path = save_file("http://saved:1", "saved-token")
    found = resolve()
    assert (found.url, found.token, found.url_from) == ("http://saved:1", "saved-token", str(path))
    monkeypatch.setenv("PAAS_URL", "http://env:2")
    found = resolve()
    assert (found.url, found.token) == ("http://env:2", "saved-token")
    assert (found.url_from, found.token_from) == ("PAAS_URL", str(path))
    monkeypatch.setenv("PAAS_TOKEN", "env-token")
    assert resolve("http://opt:3").url == "http://opt:3"
    assert resolve("http://opt:3").token == "env-token"
    assert resolve(token="opt-token").token_from == "--token"
    monkeypatch.setenv("PAAS_CONFIG", str(home / "elsewhere.json"))
    assert config_path() == home / "elsewhere.json"
