"""The ``paas`` command: launch, follow and manage instances from a terminal or a script.

Exit codes (docs/cli.md): 0 done (the wanted status was reached), 1 the instance failed or
the API refused, 2 usage error, 124 ``--timeout`` passed, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import click

from bigdata_paas.client import settings
from bigdata_paas.client.api import (
    NO_ERROR,
    ApiError,
    Client,
    ClientError,
    ConnectionFailed,
    Instance,
    InstanceFailed,
    LogLine,
    WaitTimeout,
    api_url,
)
from bigdata_paas.client.display import (
    OUTPUTS,
    Output,
    Progress,
    error,
    event_line,
    show_instance,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 124, 130


# -- argument types ----------------------------------------------------------------------------


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


# -- the command group -----------------------------------------------------------------------


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


# -- services ----------------------------------------------------------------------------------


@cli.group(invoke_without_command=True)
@output_option
@click.pass_context
def services(ctx: click.Context, output: str | None) -> None:
    """The service catalog (no subcommand: list it)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(services_list, output=output)


@services.command("list")
@output_option
@pass_context
def services_list(obj: Context, output: str | None) -> None:
    """List the services and their versions."""
    out, catalog = obj.out(output), obj.client().services()
    if out.mode != "table":
        out.json(catalog)
        return
    out.table(
        ("NAME", "VERSIONS", "DESCRIPTION"),
        [(s["name"], ", ".join(s.get("versions", [])), s.get("description", "")) for s in catalog],
    )


@services.command("show")
@click.argument("service", metavar="NAME[/VERSION]")
@output_option
@pass_context
def services_show(obj: Context, service: str, output: str | None) -> None:
    """Show a service's versions, or one version with its options."""
    out, client = obj.out(output), obj.client()
    if "/" not in service:
        versions = client.versions(service)
        if out.mode != "table":
            out.json(versions)
            return
        out.table(
            ("VERSION", "READY", "MISSING", "DESCRIPTION"),
            [
                (
                    v["version"],
                    "yes" if v["ready"] else "no",
                    ", ".join(v["missing"]),
                    v["description"],
                )
                for v in versions
            ],
        )
        return
    name, version_ = split_service(service)
    detail = client.service(name, version_)
    schema = client.options_schema(name, version_) if detail.get("options") else None
    if out.mode != "table":
        out.json({**detail, "options_schema": schema})
        return
    out.fields(
        [
            ("service", f"{name} {version_}"),
            ("description", detail.get("description")),
            (
                "ready",
                "yes" if detail.get("ready") else f"no (missing {', '.join(detail['missing'])})",
            ),
            ("template format", detail.get("template_format")),
        ]
    )
    if schema:
        rows = []
        for option, prop in schema["properties"].items():
            limits = []
            if "minimum" in prop:
                limits.append(f">= {prop['minimum']}")
            if "maximum" in prop:
                limits.append(f"<= {prop['maximum']}")
            if "enum" in prop:
                limits.append("one of " + ", ".join(json.dumps(c) for c in prop["enum"]))
            rows.append(
                (
                    option,
                    prop["type"],
                    json.dumps(prop["default"]),
                    prop.get("x-group", ""),
                    "; ".join(limits),
                    prop.get("description", ""),
                )
            )
        out.table(("OPTION", "TYPE", "DEFAULT", "GROUP", "LIMITS", "DESCRIPTION"), rows)


TEMPLATE_FILES = (
    ("service-template.json", False),
    ("service-template.yaml", True),
    ("service-template.yml", True),
)
ORQUESTRATOR_FILES = ("orquestrator.py", "orchestrator.py")


@services.command("register")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--timeout", type=int, help="seconds an orquestrator command may run")
@output_option
@pass_context
def services_register(obj: Context, folder: Path, timeout: int | None, output: str | None) -> None:
    """Register (or update) a service from a folder laid out like examples/NAME/VERSION:
    service.json, service-template.json (or .yaml), options.json, orquestrator.py."""
    out, client = obj.out(output), obj.client()
    described = folder / "service.json"
    try:
        meta = json.loads(described.read_text(encoding="utf-8")) if described.exists() else {}
    except ValueError as exc:
        raise click.BadParameter(f"{described}: {exc}", param_hint="FOLDER") from None
    name = meta.get("name") or folder.resolve().parent.name
    version_ = meta.get("version") or folder.resolve().name
    template = next(
        ((folder / f, yaml) for f, yaml in TEMPLATE_FILES if (folder / f).exists()), None
    )
    script = next((folder / f for f in ORQUESTRATOR_FILES if (folder / f).exists()), None)
    missing = [
        what
        for what, found in (
            ("service-template.json", template),
            ("options.json", (folder / "options.json").exists()),
            ("orquestrator.py", script),
        )
        if not found
    ]
    if missing or template is None or script is None:  # None only when missing names it
        raise click.BadParameter(f"{folder} has no {', '.join(missing)}", param_hint="FOLDER")
    try:
        options = json.loads((folder / "options.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise click.BadParameter(f"{folder / 'options.json'}: {exc}", param_hint="FOLDER") from None
    try:
        client.register_service(name, version_, meta.get("description", ""))
        note = "registered"
    except ApiError as exc:
        if exc.status != 409:
            raise
        note = "already registered: parts updated"
    client.put_template(name, version_, template[0].read_text(encoding="utf-8"), yaml=template[1])
    client.put_options(name, version_, options)
    detail = client.put_orquestrator(
        name, version_, script.read_text(encoding="utf-8"), timeout=timeout
    )
    if out.mode != "table":
        out.json(detail)
        return
    state = "ready" if detail.get("ready") else f"missing {', '.join(detail['missing'])}"
    click.echo(f"{name} {version_}: {note}; {state}")


# -- instances ---------------------------------------------------------------------------------


def wait_for(
    obj: Context,
    out: Output,
    instance: Instance,
    until: set[str],
    timeout: float | None,
    *,
    after: int | None = None,
) -> None:
    """Follow the instance until a status of ``until``; print it and exit with the code."""
    client = obj.client()
    goal = " or ".join(sorted(until))
    progress = Progress(out, client, instance, goal)
    try:
        with progress:
            final = client.wait(
                instance["id"],
                until,
                timeout=timeout,
                after=after,
                on_event=progress.event,
                on_reconnect=progress.reconnecting,
            )
            progress.stop(final["status"])
    except KeyboardInterrupt:
        progress.stop()
        click.echo(
            f"\nstopped waiting; instance {instance['id']} goes on (it was {progress.status}; "
            f"Ctrl-C does not stop it). Follow it again with:\n"
            f"  paas wait {instance['id']} --for {goal.split(' or ')[0]}\n"
            f"  paas events {instance['id']} -f",
            err=True,
        )
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except (InstanceFailed, WaitTimeout) as exc:
        progress.stop(exc.instance.get("status"))
        if out.mode != "table":
            out.json(exc.instance)
        raise
    if out.mode == "table" and not out.terminal:
        click.echo("")  # after the event lines
    if out.mode == "jsonl":
        out.line(final)  # the last line: the instance as it is now
    else:
        show_instance(out, final)


def wait_options(command: Callable) -> Callable:
    command = click.option(
        "--timeout",
        type=DURATION,
        help="with --wait: give up after this long (90s, 30m, 1h), exit 124",
    )(command)
    return click.option("--wait", "wait", is_flag=True, help="follow it until done")(command)


@cli.command()
@click.argument("service", metavar="NAME/VERSION")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="an option (repeat)")
@click.option(
    "-f", "--file", "path", metavar="FILE", help="options as a JSON object (- reads stdin)"
)
@click.option("--idempotency-key", metavar="KEY", help="makes the launch safe to send again")
@wait_options
@output_option
@pass_context
def launch(
    obj: Context,
    service: str,
    sets: tuple[str, ...],
    path: str | None,
    idempotency_key: str | None,
    wait: bool,
    timeout: float | None,
    output: str | None,
) -> None:
    """Launch an instance of NAME/VERSION; with --wait, follow it until it runs."""
    name, version_ = split_service(service)
    out, client = obj.out(output), obj.client()
    values = option_values(client, name, version_, sets, path)
    instance = client.launch(name, version_, values, idempotency_key=idempotency_key)
    if not wait:
        show_instance(out, instance)
        return
    if out.mode == "table" and not out.terminal:
        click.echo(f"launched {instance['name']} (id {instance['id']}); waiting until running")
    wait_for(obj, out, instance, {"running"}, timeout)


@cli.command()
@click.argument("service", metavar="NAME/VERSION")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="an option (repeat)")
@click.option("-f", "--file", "path", metavar="FILE", help="options as a JSON object")
@output_option
@pass_context
def plan(
    obj: Context, service: str, sets: tuple[str, ...], path: str | None, output: str | None
) -> None:
    """Where NAME/VERSION would run now with these options, or why it cannot."""
    name, version_ = split_service(service)
    out, client = obj.out(output), obj.client()
    result = client.plan(name, version_, option_values(client, name, version_, sets, path))
    if out.mode != "table":
        out.json(result)
        return
    summary = f"{result['nodes']} node(s), {result['cpu']} cpu, {result['mem']} MB"
    if not result["fits"]:
        click.echo(f"does not fit now ({summary}): {result['reason']}")
        return
    click.echo(f"fits ({summary}, {result['strategy']})")
    placement_table(out, result["placement"])


def placement_table(out: Output, placement: list[dict]) -> None:
    """Where each node goes: its host, host disks and addresses."""
    out.table(
        ("NODE", "HOST", "DISKS", "ADDRESSES"),
        [
            (
                p["node"],
                p["host"],
                ", ".join(f"{d}={h}" for d, h in p["disks"].items()),
                ", ".join(f"{dev}={a}" for dev, a in p["addresses"].items()),
            )
            for p in placement
        ],
    )


@cli.command("list")
@click.option("--status", help="only this status")
@click.option("--service", "service", metavar="NAME[/VERSION]", help="only this service")
@click.option("--user", help="only this user's (admins)")
@output_option
@pass_context
def list_(
    obj: Context, status: str | None, service: str | None, user: str | None, output: str | None
) -> None:
    """List your instances (admins: everyone's), newest first."""
    out = obj.out(output)
    name, _, version_ = (service or "").partition("/")
    items = list(
        obj.client().instances(
            status=status, service=name or None, version=version_ or None, user=user
        )
    )
    if out.mode != "table":
        out.json(items)
        return
    out.table(
        ("ID", "NAME", "SERVICE", "STATUS", "USER", "CREATED", "NOTE"),
        [
            (
                i["id"],
                i["name"],
                f"{i['service']} {i['version']}",
                i["status"],
                i.get("user"),
                (i.get("created_at") or "")[:19].replace("T", " "),
                i.get("waiting_for") or (i.get("error") or NO_ERROR).get("reason") or "",
            )
            for i in items
        ],
    )


@cli.command()
@click.argument("instance_id", metavar="ID")
@output_option
@pass_context
def get(obj: Context, instance_id: str, output: str | None) -> None:
    """Show an instance: status, why it waits or failed, nodes with hosts and addresses."""
    show_instance(obj.out(output), obj.client().instance(instance_id))


@cli.command()
@click.argument("instance_id", metavar="ID")
@click.option("-f", "--follow", "follow", is_flag=True, help="keep following as events happen")
@click.option("--after", type=int, metavar="EVENT_ID", help="only events after this id")
@output_option
@pass_context
def events(
    obj: Context, instance_id: str, follow: bool, after: int | None, output: str | None
) -> None:
    """An instance's events; with -f, follow them until it fails or is destroyed."""
    out, client = obj.out(output), obj.client()
    if not follow:
        items = client.events(instance_id, after=after)
        if out.mode != "table":
            out.json(items)
            return
        out.table(
            ("ID", "AT", "STATUS", "STEP", "MESSAGE"),
            [(e["id"], e["at"], e["status"], e["step"], e["message"]) for e in items],
        )
        return
    try:
        for event in client.follow(instance_id, after=after, follow=True):
            if out.mode == "table":
                click.echo(event_line(event))
            else:
                out.line(event)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


@cli.command()
@click.argument("instance_id", metavar="ID")
@click.option("-f", "--follow", "follow", is_flag=True, help="keep following new lines")
@output_option
@pass_context
def logs(obj: Context, instance_id: str, follow: bool, output: str | None) -> None:
    """An instance's orquestrator output; with -f, follow it until the instance ends."""
    out, client = obj.out(output), obj.client()

    def show(line: LogLine) -> None:
        if out.mode != "table":
            out.line(line)
        else:
            click.echo(line["line"], err=line["stream"] == "stderr" and out.terminal)

    if not follow:
        lines = client.logs(instance_id)
        if out.mode == "json":
            out.json(lines)
        else:
            for line in lines:
                show(line)
        return
    try:
        for line in client.follow_logs(instance_id, follow=True):
            show(line)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


@cli.command()
@click.argument("instance_id", metavar="ID")
@click.option(
    "--for",
    "until",
    default="running",
    show_default=True,
    type=click.Choice(["running", "destroyed", "failed", "queued", "scheduled"]),
    help="the status to wait for",
)
@click.option("--timeout", type=DURATION, help="give up after this long, exit 124")
@output_option
@pass_context
def wait(
    obj: Context, instance_id: str, until: str, timeout: float | None, output: str | None
) -> None:
    """Wait until an instance reaches a status (exit 0), fails (1) or the timeout (124)."""
    out = obj.out(output)
    wait_for(obj, out, obj.client().instance(instance_id), {until}, timeout)


@cli.command()
@click.argument("instance_id", metavar="ID")
@wait_options
@output_option
@pass_context
def destroy(
    obj: Context, instance_id: str, wait: bool, timeout: float | None, output: str | None
) -> None:
    """Destroy an instance; with --wait, until every allocation is released."""
    out = obj.out(output)
    instance = obj.client().destroy(instance_id)
    if not wait:
        show_instance(out, instance)
        return
    wait_for(obj, out, instance, {"destroyed"}, timeout)


@cli.command()
@click.argument("instance_id", metavar="ID")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="a new option (repeat)")
@click.option("--remove", multiple=True, metavar="NODE", help="a node that leaves (repeat)")
@click.option("--dry-run", is_flag=True, help="say what would change; change nothing")
@wait_options
@output_option
@pass_context
def resize(
    obj: Context,
    instance_id: str,
    sets: tuple[str, ...],
    remove: tuple[str, ...],
    dry_run: bool,
    wait: bool,
    timeout: float | None,
    output: str | None,
) -> None:
    """Resize a running instance with new options: nodes join or leave; with --wait, until
    it runs again (exit 1 if the resize was rolled back)."""
    out, client = obj.out(output), obj.client()
    if not sets:
        raise click.UsageError("give at least one new option: --set KEY=VALUE")
    instance = client.instance(instance_id)
    values = option_values(client, instance["service"], instance["version"], sets, None)
    before = client.events(instance_id)
    result = client.resize(instance_id, values, remove=list(remove), dry_run=dry_run)
    if dry_run:
        show_resize_plan(out, result)
        return
    resized = cast(Instance, result)  # without dry_run the answer is the instance (202)
    if not wait:
        show_instance(out, resized)
        return
    after = before[-1]["id"] if before else None
    wait_for(obj, out, resized, {"running"}, timeout, after=after)
    outcome = [e for e in client.events(instance_id, after=after) if e["step"] == "resize"]
    if outcome and outcome[-1]["message"].startswith("resize rolled back"):
        error(outcome[-1]["message"])
        raise click.exceptions.Exit(EXIT_FAILED)


def show_resize_plan(out: Output, plan: dict) -> None:
    if out.mode != "table":
        out.json(plan)
        return
    adds = plan["adds"]
    names = ", ".join(plan["added"] or plan["removed"])
    click.echo(
        f"{plan['action']}: {names} ({adds['nodes']:+d} node(s), {adds['cpu']:+d} cpu, "
        f"{adds['mem']:+d} MB, {adds['disks']:+d} disk(s))"
    )
    if not plan["fits"]:
        click.echo(f"does not fit now: {plan['reason']}")
        return
    if plan.get("placement"):
        placement_table(out, plan["placement"])


@cli.command()
@click.argument("instance_id", metavar="ID")
@wait_options
@output_option
@pass_context
def retry(
    obj: Context, instance_id: str, wait: bool, timeout: float | None, output: str | None
) -> None:
    """Run a failed instance again from its failed step; with --wait, until it runs."""
    out, client = obj.out(output), obj.client()
    before = client.events(instance_id)
    instance = client.retry(instance_id)
    if not wait:
        show_instance(out, instance)
        return
    # Only what happens from the retry on: the earlier failure is history.
    wait_for(obj, out, instance, {"running"}, timeout, after=before[-1]["id"] if before else None)


# -- admins ------------------------------------------------------------------------------------


@cli.group(invoke_without_command=True)
@output_option
@click.pass_context
def hosts(ctx: click.Context, output: str | None) -> None:
    """The inventory's hosts (admins; no subcommand: list them)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(hosts_list, output=output)


def _host_rows(items: list[dict]) -> list[tuple]:
    return [
        (
            h["name"],
            h["address"],
            h["state"],
            f"{h['free']['cpu']}/{h['cpu']}",
            f"{h['free']['mem']}/{h['mem']}",
            f"{h['free']['disks']}/{len(h['disks'])}",
            ", ".join(h.get("networks", [])),
        )
        for h in items
    ]


HOST_COLUMNS = ("NAME", "ADDRESS", "STATE", "FREE CPU", "FREE MEM", "FREE DISKS", "NETWORKS")


@hosts.command("list")
@output_option
@pass_context
def hosts_list(obj: Context, output: str | None) -> None:
    """List the hosts with what they have free."""
    out, items = obj.out(output), obj.client().hosts()
    if out.mode != "table":
        out.json(items)
        return
    out.table(HOST_COLUMNS, _host_rows(items))


@hosts.command("show")
@click.argument("name")
@output_option
@pass_context
def hosts_show(obj: Context, name: str, output: str | None) -> None:
    """Show one host: disks, labels, the nodes it holds."""
    out, host = obj.out(output), obj.client().host(name)
    if out.mode != "table":
        out.json(host)
        return
    out.table(HOST_COLUMNS, _host_rows([host]))
    out.table(
        ("DISK", "TYPE", "SIZE", "FREE"),
        [(d["name"], d["type"], d["size"], "yes" if d["free"] else "no") for d in host["disks"]],
    )
    if host.get("nodes"):
        out.table(
            ("INSTANCE", "NODE", "CPU", "MEM"),
            [(n["instance"], n["node"], n["cpu"], n["mem"]) for n in host["nodes"]],
        )


def _set_state(obj: Context, name: str, state: str, output: str | None) -> None:
    out, host = obj.out(output), obj.client().update_host(name, {"state": state})
    if out.mode != "table":
        out.json(host)
    else:
        click.echo(f"host {host['name']}: {host['state']}")


@hosts.command("drain")
@click.argument("name")
@output_option
@pass_context
def hosts_drain(obj: Context, name: str, output: str | None) -> None:
    """Place nothing new on a host (what runs there stays)."""
    _set_state(obj, name, "drain", output)


@hosts.command("up")
@click.argument("name")
@output_option
@pass_context
def hosts_up(obj: Context, name: str, output: str | None) -> None:
    """Let placement use a host again."""
    _set_state(obj, name, "up", output)


@cli.group(invoke_without_command=True)
@output_option
@click.pass_context
def networks(ctx: click.Context, output: str | None) -> None:
    """The address pools (admins; no subcommand: list them)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(networks_list, output=output)


@networks.command("list")
@output_option
@pass_context
def networks_list(obj: Context, output: str | None) -> None:
    """List the address pools and their use."""
    out, items = obj.out(output), obj.client().networks()
    if out.mode != "table":
        out.json(items)
        return
    out.table(
        ("NAME", "CIDR", "GATEWAY", "USED", "FREE"),
        [
            (n["name"], n["cidr"], n.get("gateway") or "-", n.get("used"), n.get("free"))
            for n in items
        ],
    )


@networks.command("show")
@click.argument("name")
@output_option
@pass_context
def networks_show(obj: Context, name: str, output: str | None) -> None:
    """Show one address pool and who holds its addresses."""
    out, network = obj.out(output), obj.client().network(name)
    if out.mode != "table":
        out.json(network)
        return
    out.fields(
        (key, network.get(key))
        for key in ("name", "cidr", "gateway", "bridge", "size", "used", "free")
    )
    if network.get("holders"):
        out.table(
            ("ADDRESS", "HOLDER"),
            [
                (h.get("address"), json.dumps({k: v for k, v in h.items() if k != "address"}))
                for h in network["holders"]
            ],
        )


@cli.group(invoke_without_command=True)
@output_option
@click.pass_context
def users(ctx: click.Context, output: str | None) -> None:
    """The users (admins; no subcommand: list them)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(users_list, output=output)


@users.command("list")
@output_option
@pass_context
def users_list(obj: Context, output: str | None) -> None:
    """List the users and their roles."""
    out, items = obj.out(output), obj.client().users()
    if out.mode != "table":
        out.json(items)
        return
    out.table(("NAME", "ROLE"), [(u["name"], u["role"]) for u in items])


@users.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["user", "admin"]), default="user", show_default=True)
@output_option
@pass_context
def users_create(obj: Context, name: str, role: str, output: str | None) -> None:
    """Create a user and print its token (shown this once)."""
    out, user = obj.out(output), obj.client().create_user(name, role)
    if out.mode != "table":
        out.json(user)
        return
    click.echo(f"created {user['name']} ({user['role']}); its token, shown this once:")
    click.echo(user["token"])


# -- your account, quotas and tokens -----------------------------------------------------------

RESOURCES = ("instances", "nodes", "cpu", "mem", "disks")


def quota_table(out: Output, quota: dict) -> None:
    out.table(
        ("RESOURCE", "LIMIT", "USED"),
        [
            (r, "unlimited" if quota[r]["limit"] is None else quota[r]["limit"], quota[r]["used"])
            for r in RESOURCES
        ],
    )


@cli.command()
@output_option
@pass_context
def me(obj: Context, output: str | None) -> None:
    """Show who you are, when your token expires, and your quota's limits and usage."""
    out, account = obj.out(output), obj.client().me()
    if out.mode != "table":
        out.json(account)
        return
    expires = account.get("token_expires_at") or "never"
    click.echo(f"{account['name']} ({account['role']}); token expires: {expires}")
    quota_table(out, account["quota"])


def limit_value(text: str) -> int | None:
    if text.lower() in ("none", "unlimited", "null"):
        return None
    if not text.isdigit():
        raise click.BadParameter(f"{text!r}: expected a whole number >= 0, or none")
    return int(text)


@cli.command()
@click.argument("name")
@click.option("--instances", metavar="N|none", help="live instances (none: unlimited)")
@click.option("--nodes", metavar="N|none", help="nodes of those instances")
@click.option("--cpu", metavar="N|none", help="cores of those nodes")
@click.option("--mem", metavar="MB|none", help="memory of those nodes (MB)")
@click.option("--disks", metavar="N|none", help="disks of those nodes")
@output_option
@pass_context
def quota(obj: Context, name: str, output: str | None, **limits: str | None) -> None:
    """Show a user's quota, or set some of its limits (admins); the others stay."""
    changes = {k: limit_value(v) for k, v in limits.items() if v is not None}
    client = obj.client()
    report = client.set_quota(name, changes) if changes else client.user(name)["quota"]
    out = obj.out(output)
    if out.mode != "table":
        out.json(report)
        return
    quota_table(out, report)


@cli.group()
def token() -> None:
    """Your bearer token (admins: anyone's)."""


@token.command("rotate")
@click.option("--user", "name", metavar="NAME", help="an admin rotates this user's token")
@click.option("--expires-in", type=click.IntRange(min=1), metavar="SECONDS", help="expiry")
@output_option
@pass_context
def token_rotate(obj: Context, name: str | None, expires_in: int | None, output: str | None):
    """Replace a token: the new one is printed this once, the old one is refused from now.

    Your own new token replaces the old one in the file ``paas login`` saved it to."""
    client = obj.client()
    answer = client.rotate_token(name, expires_in)
    saved = None
    found = obj.found
    if name is None and found.url and found.token_from == str(settings.config_path()):
        saved = settings.save_file(found.url, answer["token"])
    out = obj.out(output)
    if out.mode != "table":
        out.json(answer)
        return
    expires = answer.get("expires_at") or "never"
    click.echo(f"new token of {answer['name']} (expires: {expires}), shown this once:")
    click.echo(answer["token"])
    if saved is not None:
        click.echo(f"saved to {saved}", err=True)


# -- entry point -------------------------------------------------------------------------------


def run(argv: list[str] | None = None) -> int:
    """Run the command; return its exit code."""
    try:
        # Without standalone mode click returns what ctx.exit(code) asked for (or the
        # command's own None), and leaves every exception to the handlers below.
        code = cli.main(args=argv, prog_name="paas", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:  # usage errors are 2, the rest 1
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("\ninterrupted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        return EXIT_INTERRUPTED
    except WaitTimeout as exc:
        error(f"timed out after {exc.timeout:g}s: {exc}")
        return EXIT_TIMEOUT
    except InstanceFailed as exc:
        error(str(exc))
        return EXIT_FAILED
    except ApiError as exc:
        problems = exc.problems
        if len(problems) < 2:
            error(exc.message)
        else:  # one a line
            error(f"{len(problems)} problems ({exc.status} {exc.code}):")
            for problem in problems:
                field = problem.get("field")
                text = f"{field}: {problem['message']}" if field else problem["message"]
                click.echo(f"  {text}", err=True)
        return EXIT_FAILED
    except ConnectionFailed as exc:
        error(str(exc))
        return EXIT_FAILED
    except ClientError as exc:
        error(str(exc))
        return EXIT_FAILED
    return code if isinstance(code, int) else EXIT_OK


def main() -> None:
    """The ``paas`` console script."""
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
