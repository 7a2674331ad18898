"""``paas services``: the catalog, one service's options, registering a service folder."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bigdata_paas.client.api import (
    ApiError,
)
from bigdata_paas.client.cli.base import Context, cli, output_option, pass_context, split_service


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
