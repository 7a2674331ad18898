"""Commands on instances: launch, plan, list, get, events, logs, wait, destroy, resize,
retry."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import click

from bigdata_paas.client.api import (
    NO_ERROR,
    Instance,
    InstanceFailed,
    LogLine,
    WaitTimeout,
)
from bigdata_paas.client.cli.base import (
    DURATION,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    Context,
    cli,
    option_values,
    output_option,
    pass_context,
    split_service,
)
from bigdata_paas.client.display import (
    Output,
    Progress,
    error,
    event_line,
    show_instance,
)


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
