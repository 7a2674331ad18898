"""bigdata-paas: a self-hosted Platform-as-a-Service for big-data clusters."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

# The server's imports wait for create_app: the client (bigdata_paas.client, the paas
# command) imports this package too, installed without the server's dependencies.
if TYPE_CHECKING:
    from flask import Flask

    from bigdata_paas.settings import Config


def create_app(config: Config | None = None) -> Flask:
    """Build the web app, its database and its Celery app from ``config`` (or the env)."""
    from flask import Flask
    from flask.json.provider import DefaultJSONProvider

    from bigdata_paas import logs
    from bigdata_paas.api import init_api
    from bigdata_paas.db import Database
    from bigdata_paas.messaging.app import celery_init_app
    from bigdata_paas.messaging.publish import install_outbox
    from bigdata_paas.runtime import Runtime
    from bigdata_paas.settings import Config

    config = config or Config.from_env()
    config.data_path.mkdir(parents=True, exist_ok=True)
    # Orquestrators (as nobody) pass through to their work dirs but cannot list or read here.
    os.chmod(config.data_path, 0o711)
    logs.configure(config.LOG_LEVEL, config.LOG_FORMAT)
    app = Flask(__name__, static_folder=None)
    app.config.update(
        SECRET_KEY=None,
        TESTING=config.TESTING,
        MAX_CONTENT_LENGTH=config.MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
    )
    if isinstance(app.json, DefaultJSONProvider):  # Flask's own, as no other is set
        app.json.sort_keys = False
    celery = celery_init_app(app, config)
    db = Database(config.database_url, config.DB_POOL_SIZE, config.DB_MAX_OVERFLOW)
    install_outbox(db.sessionmaker, celery)
    app.extensions["paas"] = Runtime(config=config, db=db, celery=celery)
    init_api(app)
    from bigdata_paas.console import init_console

    init_console(app)
    from bigdata_paas import cli

    cli.init_cli(app)
    # registers the tasks with Celery
    import bigdata_paas.tasks.agents
    import bigdata_paas.tasks.pipeline  # noqa: F401

    return app
