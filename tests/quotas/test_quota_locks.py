"""What a launch's quota check locks on PostgreSQL: a user without limits shares their row
(their launches do not wait for one another, a change of their quota waits for them); a
limited user's check holds the row until the launch commits."""

from __future__ import annotations

import psycopg.errors
import pytest
from sqlalchemy import exc, select, text, update

from bigdata_paas.models import User
from bigdata_paas.operations import quotas
from bigdata_paas.operations.users import create_user
from tests.conftest import base_env, make_app

pytestmark = [pytest.mark.services]

ONE = quotas.Usage(instances=1, nodes=1, cpu=1, mem=256, disks=1)


@pytest.fixture
def rt(data_root, pg_database):
    app = make_app(base_env(data_root / "var", PAAS_DATABASE_URL=pg_database))
    try:
        yield app.extensions["paas"]
    finally:
        app.extensions["paas"].db.dispose()


def user_id(rt, name: str) -> int:
    create_user(rt, name, actor="admin")
    with rt.db.session() as session:
        return session.scalar(select(User.id).where(User.name == name))


def waits(rt, work) -> bool:
    """Whether ``work(session)`` waits for a lock held elsewhere (given up after 200 ms)."""
    session = rt.db.sessionmaker()
    try:
        session.execute(text("SET LOCAL lock_timeout = '200ms'"))
        work(session)
        return False
    except exc.OperationalError as error:
        if isinstance(error.orig, psycopg.errors.LockNotAvailable):
            return True
        raise
    finally:
        session.rollback()
        session.close()


def set_quota(quota: dict):
    return lambda session, uid: session.execute(
        update(User).where(User.id == uid).values(quota=quota)
    )


def test_a_user_without_limits_shares_the_row_with_their_other_launches(rt):
    alice = user_id(rt, "alice")
    with rt.db.session() as launching:
        assert quotas.excesses(launching, rt.config, alice, ONE) == []
        assert not waits(rt, lambda s: quotas.excesses(s, rt.config, alice, ONE))
        # a change of her quota waits until the launch commits
        assert waits(rt, lambda s: set_quota({"instances": 1})(s, alice))
        launching.commit()
    assert not waits(rt, lambda s: set_quota({"instances": 1})(s, alice))


def test_a_limited_users_check_holds_the_row(rt):
    bob = user_id(rt, "bob")
    with rt.db.session() as session:
        set_quota({"instances": 5})(session, bob)
        session.commit()
    with rt.db.session() as launching:
        assert quotas.excesses(launching, rt.config, bob, ONE) == []
        assert waits(rt, lambda s: quotas.excesses(s, rt.config, bob, ONE))
        launching.rollback()
    assert not waits(rt, lambda s: quotas.excesses(s, rt.config, bob, ONE))


def test_the_default_quota_counts_in_the_same_read(rt):
    carol = user_id(rt, "carol")
    quotas.set_default_quota(rt, "admin", {"cpu": 2})
    with rt.db.session() as session:
        assert quotas.excesses(session, rt.config, carol, ONE) == []
        session.rollback()
        assert quotas.excesses(session, rt.config, carol, quotas.Usage(cpu=3)) == [
            {"resource": "cpu", "requested": 3, "used": 0, "limit": 2}
        ]
        # her own null is unlimited over the default: her check shares the row again
        set_quota({"cpu": None})(session, carol)
        session.commit()
        assert quotas.excesses(session, rt.config, carol, quotas.Usage(cpu=3)) == []
        assert not waits(rt, lambda s: quotas.excesses(s, rt.config, carol, ONE))
