"""The ``paas`` group: its options, the context every command gets, argument types, and
signing in and out."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import click

from bigdata_paas.client import settings
from bigdata_paas.client.api import (
    ApiError,
    Client,
    api_url,
)
from bigdata_paas.client.display import (
    OUTPUTS,
    Output,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 124, 130


class Duration(click.ParamType):
    """``90``, ``90s``, ``5m``, ``1h30m``, ``1.5h``: a number of seconds."""

    name = "duration"
    UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")

    def convert(self, value: Any, param, ctx) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        text, total, pos = str(value).strip().lower(), 0.0, 0
        while pos < len(text):
            match = self.PART.match(text, pos)
            # a number without a unit is seconds, but only alone ("1h30" is not clear)
            if not match or (match.group(2) is None and (pos or match.end() != len(text))):
                self.fail(f"{value!r} is not a duration like 90s, 5m, 1h30m", param, ctx)
            total += float(match.group(1)) * self.UNITS[match.group(2) or "s"]
            pos = match.end()
        if not text or not math.isfinite(total) or total <= 0:
            self.fail(f"{value!r} is not a duration like 90s, 5m, 1h30m", param, ctx)
        return total


DURATION = Duration()


def split_service(text: str) -> tuple[str, str]:
    name, _, version = text.partition("/")
    if not name or not version or "/" in version:
        raise click.BadParameter(f"{text!r}: expected NAME/VERSION, e.g. gluster/3.7.11")
    return name, version


TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def typed(name: str, text: str, prop: dict | None) -> Any:
    """The value of ``--set name=text``, typed by the option's JSON Schema property; an
    option the schema does not know is sent as JSON if it parses, else as text (the API then
    names it, with a suggestion)."""
    kind = (prop or {}).get("type")
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            value = int(text) if re.fullmatch(r"[+-]?\d+", text.strip()) else float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
    except ValueError:
        raise click.BadParameter(
            f"{name}: {text!r} is not {'an integer' if kind == 'integer' else 'a number'}",
            param_hint="--set",
        ) from None
    if kind == "boolean":
        if text.strip().lower() in TRUE:
            return True
        if text.strip().lower() in FALSE:
            return False
        raise click.BadParameter(f"{name}: {text!r} is not true or false", param_hint="--set")
    if kind == "string":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def option_values(
    client: Client, name: str, version: str, sets: tuple[str, ...], path: str | None
) -> dict:
    """Launch options: the file's (``-f``; ``-`` reads stdin), then each ``--set`` over it."""
    values: dict = {}
    if path:
        try:
            raw = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
            values = json.loads(raw)
        except (OSError, ValueError) as exc:
            raise click.BadParameter(f"{path}: {exc}", param_hint="-f") from None
        if not isinstance(values, dict):
            raise click.BadParameter(f"{path}: expected a JSON object", param_hint="-f")
    if sets:
        try:
            properties = client.options_schema(name, version).get("properties", {})
        except ApiError as exc:
            if exc.status != 404:
                raise
            properties = {}  # the launch will say what is missing
        for item in sets:
            key, sep, text = item.partition("=")
            if not sep or not key:
                raise click.BadParameter(f"{item!r}: expected key=value", param_hint="--set")
            values[key.strip()] = typed(key.strip(), text, properties.get(key.strip()))
    return values


class Context:
    """What the group's options say, and the client made from them (on first use)."""

    def __init__(self, url: str | None, token: str | None, output: str | None) -> None:
        self.url, self.token, self.output = url, token, output
        self._client: Client | None = None

    def client(self) -> Client:
        if self._client is None:
            try:
                found = settings.resolve(self.url, self.token)
            except (PermissionError, ValueError) as exc:
                raise click.UsageError(str(exc)) from None
            if not found.url:
                raise click.UsageError(
                    "no server: set PAAS_URL (e.g. http://127.0.0.1:5000), pass --url, "
                    "or run paas login"
                )
            if not found.token:
                raise click.UsageError("no token: set PAAS_TOKEN, pass --token, or run paas login")
            self.found = found
            try:
                self._client = Client(found.url, found.token)
            except ValueError as exc:
                raise click.UsageError(f"{found.url_from}: {exc}") from None
        return self._client

    def out(self, output: str | None) -> Output:
        return Output(output or self.output or "table")


def output_option(command: Callable) -> Callable:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(OUTPUTS),
        default=None,
        help="table (the default), json, or jsonl (one JSON object a line)",
    )(command)


def version() -> str:
    try:
        return metadata.version("bigdata-paas")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", metavar="URL", help="the server (default: PAAS_URL, or paas login's)")
@click.option("--token", metavar="TOKEN", help="bearer token (default: PAAS_TOKEN, or saved)")
@output_option
@click.version_option(version(), prog_name="paas", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, url: str | None, token: str | None, output: str | None) -> None:
    """Launch and follow big-data clusters on a bigdata-paas server.

    Exit codes: 0 done, 1 failed or refused, 2 usage, 124 timed out, 130 interrupted.
    """
    ctx.obj = Context(url, token, output)


pass_context = click.make_pass_decorator(Context)


@cli.command()
@click.option("--url", metavar="URL", help="the server, e.g. http://127.0.0.1:5000")
@click.option("--token", metavar="TOKEN", help="your bearer token (asked for when missing)")
@pass_context
def login(obj: Context, url: str | None, token: str | None) -> None:
    """Check a server URL and token, and save them for the next commands (mode 0600)."""
    url = url or obj.url
    token = token or obj.token
    if not url:
        url = click.prompt("Server URL", default="http://127.0.0.1:5000")
    if not token:
        token = click.prompt("Token", hide_input=True)
    try:
        base = api_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--url") from None
    with Client(url, token) as client:
        client.services()  # the token works
        try:
            client.users()
            role = "admin"
        except ApiError as exc:
            if exc.status != 403:
                raise
            role = "user"
    path = settings.save_file(url, token)
    click.echo(f"logged in to {base} ({role}); saved to {path} (mode 0600)")


@cli.command()
def logout() -> None:
    """Forget the saved URL and token."""
    path = settings.config_path()
    path.unlink(missing_ok=True)
    click.echo(f"removed {path}")
