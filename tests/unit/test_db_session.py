"""``Database.session``: a database that cannot be reached is a DatabaseUnavailable, and a
connection that dies while it is given back (the server restarting between the last
statement and the ROLLBACK of close) is no error at all: the work before it is done."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import exc, text
from sqlalchemy.orm import Session

from bigdata_paas.db import Database
from bigdata_paas.errors import DatabaseUnavailable


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'paas.sqlite3'}")
    yield database
    database.dispose()


def lost(*_args, **_kwargs):
    raise exc.OperationalError("ROLLBACK", {}, Exception("server closed the connection"))


def test_a_connection_lost_on_close_keeps_what_was_read(db, monkeypatch, caplog):
    monkeypatch.setattr(Session, "close", lost)
    with caplog.at_level(logging.WARNING, "bigdata_paas.db"), db.session() as session:
        value = session.scalar(text("SELECT 41 + 1"))
    assert value == 42
    assert "connection lost on close" in caplog.text


def test_another_error_on_close_still_raises(db, monkeypatch):
    def broken(*_args, **_kwargs):
        raise exc.ProgrammingError("ROLLBACK", {}, Exception("a bug"))

    monkeypatch.setattr(Session, "close", broken)
    with pytest.raises(exc.ProgrammingError), db.session() as session:
        session.scalar(text("SELECT 1"))


def test_an_unreachable_database_inside_is_unavailable_whatever_close_says(db, monkeypatch):
    monkeypatch.setattr(Session, "close", lost)
    with pytest.raises(DatabaseUnavailable), db.session():
        lost()
