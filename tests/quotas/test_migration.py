"""Migration 0006 on a database with data, on SQLite and PostgreSQL: live instances get their
quota counts from their spec, and nothing is lost on the way up or down."""

from __future__ import annotations

import json

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import text

from bigdata_paas.cli import MIGRATIONS
from bigdata_paas.db import make_engine

SPEC = {
    "nodes": {
        "a": {"cpu": 2, "mem": 100, "disks": {"d0": {}}},
        "b": {"cpu": 1, "mem": 50, "disks": {}},
    }
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'paas.sqlite3'}"
    return request.getfixturevalue("pg_database")


def alembic(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["database_url"] = url
    return cfg


def test_0006_counts_existing_instances_and_keeps_every_row_both_ways(database_url):
    cfg = alembic(database_url)
    command.upgrade(cfg, "0005")
    engine = make_engine(database_url)
    try:
        with engine.begin() as db:
            db.execute(
                text(
                    "INSERT INTO users (id, name, role, token_hash, created_at) "
                    "VALUES (1, 'alice', 'user', 'h', CURRENT_TIMESTAMP)"
                )
            )
            for instance_id, spec in (("i1", json.dumps(SPEC)), ("i2", None)):
                db.execute(
                    text(
                        "INSERT INTO instances (id, user_id, service_name, service_version, "
                        "status, options, spec, created_at, updated_at, run_attempts) VALUES "
                        "(:id, 1, 's', '1', 'running', '{}', :spec, CURRENT_TIMESTAMP, "
                        "CURRENT_TIMESTAMP, 0)"
                    ),
                    {"id": instance_id, "spec": spec},
                )
                db.execute(
                    text(
                        "INSERT INTO events (instance_id, step, status, message, at) "
                        "VALUES (:id, 'launch', 'pending', 'accepted', CURRENT_TIMESTAMP)"
                    ),
                    {"id": instance_id},
                )
        command.upgrade(cfg, "0006")
        with engine.connect() as db:
            held = db.execute(
                text(
                    "SELECT id, held_nodes, held_cpu, held_mem, held_disks FROM instances "
                    "ORDER BY id"
                )
            ).all()
            assert [tuple(row) for row in held] == [("i1", 2, 3, 150, 1), ("i2", 0, 0, 0, 0)]
            user = db.execute(text("SELECT disabled, token_expires_at, quota FROM users")).one()
            assert (bool(user[0]), user[1], user[2]) == (False, None, None)
        command.downgrade(cfg, "0005")
        with engine.connect() as db:
            counts = [
                db.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                for table in ("users", "instances", "events")
            ]
            assert counts == [1, 2, 2]
        command.upgrade(cfg, "head")
    finally:
        engine.dispose()
