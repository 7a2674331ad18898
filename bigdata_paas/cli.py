"""Operator commands: ``flask --app wsgi paas setup|create-user|load-hosts|destroy-all|...``."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from bigdata_paas.credentials import flower_password
from bigdata_paas.errors import PaasError
from bigdata_paas.messaging.app import ORQUESTRATOR_QUEUE, PIPELINE_QUEUE
from bigdata_paas.settings import Config

#: the migrations ship inside the package: an installed platform finds them without a checkout
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: who the audit trail names for what these commands change: whoever runs them on the machine
OPERATOR = "paas-server"


def migrate(database_url: str) -> None:
    """Bring the database schema to the newest migration (alembic configured here, no
    alembic.ini needed: the repository's one is for ``alembic revision`` in a checkout)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["database_url"] = database_url
    command.upgrade(cfg, "head")


def clean_broker(config: Config) -> int:
    """Drop what dead workers and Flowers left in the filesystem broker; keep pipeline work.

    Event and remote-control queues of processes that are gone would otherwise
    collect a message per heartbeat forever. Call only when no worker runs.
    """
    if not config.uses_filesystem_broker:
        return 0
    keep = {config.queue(PIPELINE_QUEUE), config.queue(ORQUESTRATOR_QUEUE)}
    removed = 0
    queue_dir = config.broker_path / "queue"
    if queue_dir.is_dir():
        for path in queue_dir.iterdir():
            queue = path.name.partition(".")[2].removesuffix(".msg")
            if queue not in keep:
                path.unlink(missing_ok=True)
                removed += 1
    for sub in ("control", "tmp", "staging"):
        shutil.rmtree(config.broker_path / sub, ignore_errors=True)
        (config.broker_path / sub).mkdir(parents=True, exist_ok=True)
    return removed


def prepare_agents(config: Config) -> None:
    """Say how this machine's agents will run nodes; build the node image podman needs."""
    if not config.agent_hosts:
        return
    from bigdata_paas.nodes.driver import podman_works
    from bigdata_paas.nodes.errors import NodeRuntimeError
    from bigdata_paas.nodes.image import ensure_image

    driver = config.NODE_DRIVER
    if driver == "auto":
        driver = "podman" if podman_works() else "process"
    hosts = ", ".join(config.agent_hosts)
    click.echo(f"agents for {hosts} run nodes with the {driver} driver")
    if driver == "podman":
        try:
            click.echo(f"node image ready: {ensure_image()}")
        except (NodeRuntimeError, OSError) as exc:
            click.echo(f"warning: cannot build the node image ({exc}); nodes will not start")


def read_inventory(text: str) -> tuple[list, list]:
    """(networks, hosts) of an inventory file's text: a list of hosts, or an object.

    The object form is ``{"networks": [...], "hosts": [...]}``, each list of bodies of
    ``POST /networks`` and ``POST /hosts``. Raises ValueError saying what is wrong.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if isinstance(data, list):
        networks, hosts = [], data
    elif isinstance(data, dict):
        extra = sorted(set(data) - {"networks", "hosts"})
        if extra:
            raise ValueError(f"unknown keys {', '.join(extra)}: expected networks and hosts")
        networks, hosts = data.get("networks", []), data.get("hosts", [])
    else:
        raise ValueError(
            'expected a list of hosts or an object {"networks": [...], "hosts": [...]}'
        )
    for what, items in (("networks", networks), ("hosts", hosts)):
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValueError(f"{what} must be a list of JSON objects")
    for what, items in (("network", networks), ("host", hosts)):
        names = [i.get("name") for i in items]
        twice = sorted({str(n) for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"{what} names listed twice: {', '.join(twice)}")
    return networks, hosts


def _item_name(body: dict, index: int) -> str:
    name = body.get("name") if isinstance(body, dict) else None
    return name if isinstance(name, str) and name else f"#{index + 1}"


def init_cli(app: Flask) -> None:
    group = AppGroup("paas", help="bigdata-paas operator commands")

    def runtime():
        return app.extensions["paas"]

    @group.command("setup")
    def setup() -> None:
        """Migrate the database, ensure the admin user, tidy the embedded broker."""
        from bigdata_paas.operations.users import ensure_admin

        rt = runtime()
        migrate(rt.config.database_url)
        click.echo(f"database ready: {rt.db.engine.url.render_as_string(hide_password=True)}")
        generated = ensure_admin(rt, rt.config.ADMIN_TOKEN)
        if generated:
            click.echo("=" * 72)
            click.echo("created the user admin; its bearer token (shown this once):")
            click.echo(f"    export PAAS_ADMIN_TOKEN={generated}")
            click.echo("=" * 72)
        _password, new = flower_password(rt.config)
        if new:
            click.echo(
                f"Flower: http://127.0.0.1:{rt.config.FLOWER_PORT} user "
                f"{rt.config.FLOWER_USER}, password in "
                f"{rt.config.data_path}/flower-password"
            )
        click.echo(
            f"web console: http://{rt.config.HOST}:{rt.config.PORT}/console/ "
            "(sign in with a bearer token: the admin's)"
        )
        removed = clean_broker(rt.config)
        if removed:
            click.echo(f"removed {removed} stale broker message(s) of gone processes")
        prepare_agents(rt.config)

    @group.command("create-user")
    @click.argument("name")
    @click.option("--role", type=click.Choice(["user", "admin"]), default="user")
    def create_user(name: str, role: str) -> None:
        """Create a user and print its token (shown this once)."""
        from bigdata_paas.api.schemas import UserIn, load
        from bigdata_paas.operations.users import create_user as create

        try:
            user = load(UserIn, {"name": name, "role": role})
            created = create(runtime(), user["name"], user["role"], actor=OPERATOR)
        except PaasError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(created["token"])

    @group.command("load-hosts")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    def load_hosts(path: str) -> None:
        """Load an inventory file: a JSON list of hosts, or {"networks": [...], "hosts": [...]}.

        Networks are created first, then hosts; names that already exist are skipped. Every
        host is checked before anything is added (examples/inventory.json is the demo).
        """
        from bigdata_paas.api.schemas import HostIn, NetworkIn, load
        from bigdata_paas.errors import Conflict
        from bigdata_paas.operations import inventory

        rt = runtime()
        try:
            networks, hosts = read_inventory(Path(path).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"{path}: {exc}") from None
        added = {"network": 0, "host": 0}
        skipped = {"network": 0, "host": 0}
        problems = []
        existing = {n["name"]: n for n in inventory.list_networks(rt)}
        known = set(existing) | {n.get("name") for n in networks}
        for what, schema, items in (("network", NetworkIn, networks), ("host", HostIn, hosts)):
            for i, body in enumerate(items):
                try:
                    items[i] = load(schema, body)
                except PaasError as exc:
                    problems.append(f"{what} {_item_name(body, i)}: {exc.message}")
        for i, body in enumerate(hosts):
            unknown = sorted(set(body.get("networks", [])) - known)
            if unknown:
                problems.append(
                    f"host {_item_name(body, i)}: unknown networks: {', '.join(unknown)} "
                    '(list them under "networks" in the file, or create them first)'
                )
        if problems:
            raise click.ClickException(f"{path}: nothing loaded:\n  " + "\n  ".join(problems))
        for network in networks:
            name = network["name"]
            try:
                added_network = inventory.add_network(rt, network, actor=OPERATOR)
            except Conflict:
                cidr = inventory.describe_network(rt, name)["cidr"]
                note = f" as {cidr}, not {network['cidr']}" if cidr != network["cidr"] else ""
                click.echo(f"network {name}: already exists{note}, skipped")
                skipped["network"] += 1
                continue
            except PaasError as exc:
                raise click.ClickException(f"network {name}: {exc.message}") from None
            gateway = f", gateway {added_network['gateway']}" if added_network["gateway"] else ""
            click.echo(f"network {name}: added ({added_network['cidr']}{gateway})")
            added["network"] += 1
        for host in hosts:
            name = host["name"]
            try:
                added_host = inventory.add_host(rt, host, actor=OPERATOR)
            except Conflict:
                click.echo(f"host {name}: already exists, skipped")
                skipped["host"] += 1
                continue
            except PaasError as exc:
                raise click.ClickException(f"host {name}: {exc.message}") from None
            attached = ", ".join(added_host["networks"]) or "none"
            click.echo(
                f"host {name}: added ({added_host['address']}, {added_host['cpu']} cpu, "
                f"{added_host['mem']} MB, {len(added_host['disks'])} disks, networks: {attached})"
            )
            added["host"] += 1
        click.echo(
            f"{path}: {added['network']} network(s) added, {skipped['network']} skipped; "
            f"{added['host']} host(s) added, {skipped['host']} skipped"
        )

    @group.command("destroy-all")
    @click.option("--wait", is_flag=True, help="wait until every instance is destroyed")
    @click.option(
        "--timeout", type=float, default=300.0, show_default=True, help="seconds --wait waits"
    )
    def destroy_all(wait: bool, timeout: float) -> None:
        """Destroy every instance of this deployment, and what they started.

        Each instance goes through the same destroy as DELETE /instances/{id}: the
        orquestrator's stop, the agents stop its nodes, allocations released. The platform's
        workers and agents do that work, so the platform must be running (`make run`). With
        --wait, waits until every instance is destroyed, then lists any node of this deployment
        still on this machine (exit 1 if one is, or on the time limit).
        """
        from bigdata_paas import states
        from bigdata_paas.agent.local import local_nodes
        from bigdata_paas.operations.instances import describe_instance, destroy_every_instance
        from bigdata_paas.operations.users import the_admin

        rt = runtime()
        try:
            admin = the_admin(rt)
        except PaasError as exc:
            raise click.ClickException(exc.message) from None
        asked = destroy_every_instance(rt, admin)
        if not asked:
            click.echo("no instance to destroy")
        for line in asked:
            what = f"instance {line['id']} ({line['service']} {line['version']})"
            if "error" in line:
                click.echo(f"{what}: not destroyed: {line['error']}")
            else:
                click.echo(f"{what}: {line['status']}")
        if not wait:
            return
        waiting = {line["id"] for line in asked if "error" not in line}
        deadline = time.monotonic() + timeout
        while waiting:
            for instance_id in sorted(waiting):
                if describe_instance(rt, admin, instance_id)["status"] == states.DESTROYED:
                    click.echo(f"instance {instance_id}: destroyed")
                    waiting.discard(instance_id)
            if waiting and time.monotonic() > deadline:
                raise click.ClickException(
                    f"still not destroyed after {timeout:g} s: {', '.join(sorted(waiting))}; "
                    "is the platform running (`make run`)? its workers and agents destroy them"
                )
            if waiting:
                time.sleep(0.5)
        left = local_nodes(rt.config)
        if left:
            for node in left:
                click.echo(f"still on this machine: {node.name} on {node.host} ({node.state})")
            raise click.ClickException(
                f"{len(left)} node(s) of this deployment are still on this machine: their "
                "agents remove them when they next report (is every agent running?)"
            )
        click.echo("no node of this deployment is left on this machine")
        if any("error" in line for line in asked):
            raise click.ClickException("some instances could not be destroyed (see above)")

    @group.command("settings")
    def settings() -> None:
        """Print every PAAS_* setting with its default and meaning."""
        for name, default, doc in Config.describe():
            click.echo(f"{name:32} {default!s:24} {doc}")

    app.cli.add_command(group)
