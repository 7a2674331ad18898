"""Operator commands: ``flask --app wsgi paas setup|create-user|load-hosts|settings``."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from bigdata_paas.errors import PaasError
from bigdata_paas.pipeline.celery import ORQUESTRATOR_QUEUE, PIPELINE_QUEUE
from config import Config

ROOT = Path(__file__).resolve().parent.parent


def migrate(database_url: str) -> None:
    """Bring the database schema to the newest migration."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
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


def flower_password(config: Config) -> tuple[str, bool]:
    """The Flower password: from the environment, or generated once into DATA_DIR."""
    if config.FLOWER_PASSWORD:
        return config.FLOWER_PASSWORD, False
    path = config.data_path / "flower-password"
    if path.exists():
        return path.read_text().strip(), False
    password = secrets.token_urlsafe(18)
    path.touch(mode=0o600)
    path.write_text(password)
    return password, True


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
        with rt.db.session() as session:
            generated = ensure_admin(session, rt.config.ADMIN_TOKEN)
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
        removed = clean_broker(rt.config)
        if removed:
            click.echo(f"removed {removed} stale broker message(s) of gone processes")

    @group.command("create-user")
    @click.argument("name")
    @click.option("--role", type=click.Choice(["user", "admin"]), default="user")
    def create_user(name: str, role: str) -> None:
        """Create a user and print its token (shown this once)."""
        from bigdata_paas.operations.users import create_user as create

        with runtime().db.session() as session:
            try:
                _user, token = create(session, name, role)
            except PaasError as exc:
                raise click.ClickException(exc.message) from None
        click.echo(token)

    @group.command("load-hosts")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    def load_hosts(path: str) -> None:
        """Add every host of a JSON list file (existing names are skipped)."""
        from bigdata_paas.errors import Conflict
        from bigdata_paas.operations.inventory import add_host
        from bigdata_paas.pipeline.publish import kick_queue

        hosts = json.loads(Path(path).read_text())
        with runtime().db.session() as session:
            for body in hosts:
                try:
                    add_host(session, body)
                    click.echo(f"added {body['name']}")
                except Conflict:
                    session.rollback()
                    click.echo(f"exists {body['name']}")
                except PaasError as exc:
                    raise click.ClickException(f"{body.get('name')}: {exc.message}") from None
        kick_queue(runtime().celery)

    @group.command("settings")
    def settings() -> None:
        """Print every PAAS_* setting with its default and meaning."""
        for name, default, doc in Config.describe():
            click.echo(f"{name:32} {default!s:24} {doc}")

    app.cli.add_command(group)
