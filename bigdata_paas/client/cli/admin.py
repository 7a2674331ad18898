"""Commands for admins (hosts, networks, users) and for every account (me, quotas,
tokens)."""

from __future__ import annotations

import json

import click

from bigdata_paas.client import settings
from bigdata_paas.client.cli.base import Context, cli, output_option, pass_context
from bigdata_paas.client.display import (
    Output,
)


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
