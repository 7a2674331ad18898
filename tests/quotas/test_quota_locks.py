"""What a launch's quota check locks on PostgreSQL: a user without limits shares their row
(their launches do not wait for one another, a change of their quota waits for them); a
limited user's check holds the row until the launch commits. The same through the API,
whose launches check on the driver."""

from __future__ import annotations

import psycopg.errors
import pytest
from sqlalchemy import exc, func, select, text, update

from bigdata_paas.models import Instance, User
from bigdata_paas.operations import instances as instance_ops
from bigdata_paas.operations import quotas
from bigdata_paas.operations.users import create_user
from tests.api.support import error_of
from tests.conftest import base_env, bearer, make_app
from tests.quotas.support import register_sized

pytestmark = [pytest.mark.services]

ONE = quotas.Usage(instances=1, nodes=1, cpu=1, mem=256, disks=1)


@pytest.fixture
def app(data_root, pg_database):
    app = make_app(base_env(data_root / "var", PAAS_DATABASE_URL=pg_database))
    try:
        yield app
    finally:
        app.extensions["paas"].db.dispose()


@pytest.fixture
def rt(app):
    return app.extensions["paas"]


def user_id(rt, name: str) -> int:
    create_user(rt, name, actor="admin")
    return user_id_of(rt, name)


def user_id_of(rt, name: str) -> int:
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


# A launch through the API on PostgreSQL checks its quota on the driver (operations/
# instances.py: _commit_on_driver): the same locks, held from its first round trip to its
# commit.

LAUNCH = "/bigdata/api/v1/services/sized/1"


@pytest.fixture
def api(app, rt):
    """A client of the app with the sized service, and a maker of users' headers."""
    client = app.test_client()
    register_sized(client)

    def headers(name: str) -> dict[str, str]:
        return bearer(create_user(rt, name, actor="admin")["token"])

    return client, headers


def while_launching(monkeypatch, check) -> list:
    """What ``check()`` answers in the middle of every launch from now on: after its quota
    check (the locks taken), before its rows are inserted."""
    seen: list = []
    real = instance_ops.driver_values

    def between(table, row):
        seen.append(check())
        return real(table, row)

    monkeypatch.setattr(instance_ops, "driver_values", between)
    return seen


def test_a_launch_without_limits_shares_the_users_row_until_it_commits(rt, api, monkeypatch):
    client, headers = api
    alice = headers("alice")
    uid = user_id_of(rt, "alice")
    seen = while_launching(
        monkeypatch,
        lambda: (
            waits(rt, lambda s: s.execute(quotas.LIMITS_OF_USER_SHARED, {"user_id": uid})),
            waits(rt, lambda s: set_quota({"instances": 1})(s, uid)),
        ),
    )
    assert client.post(LAUNCH, json={"n": 1}, headers=alice).status_code == 202
    # another launch of hers would not wait; a change of her quota would
    assert seen == [(False, True)]
    assert not waits(rt, lambda s: set_quota({"instances": 1})(s, uid))


def test_a_limited_users_launch_holds_the_row_until_it_commits(rt, api, monkeypatch):
    client, headers = api
    bob = headers("bob")
    uid = user_id_of(rt, "bob")
    with rt.db.session() as session:
        set_quota({"instances": 5})(session, uid)
        session.commit()
    seen = while_launching(
        monkeypatch,
        lambda: waits(rt, lambda s: s.execute(quotas.LIMITS_OF_USER_SHARED, {"user_id": uid})),
    )
    assert client.post(LAUNCH, json={"n": 1}, headers=bob).status_code == 202
    assert seen == [True]
    assert not waits(rt, lambda s: quotas.excesses(s, rt.config, uid, ONE))


def test_limits_given_while_a_launch_renders_are_checked(rt, api, monkeypatch):
    """The token check read no limits (the hint); an admin sets some before the launch takes
    its lock: the launch is checked against them, not let through on the hint."""
    client, headers = api
    carol = headers("carol")
    uid = user_id_of(rt, "carol")
    real = instance_ops.dry_render

    def quota_set_meanwhile(*args, **kwargs):
        with rt.db.session() as session:
            set_quota({"instances": 0})(session, uid)
            session.commit()
        return real(*args, **kwargs)

    monkeypatch.setattr(instance_ops, "dry_render", quota_set_meanwhile)
    refused = client.post(LAUNCH, json={"n": 1}, headers=carol)
    assert refused.status_code == 403, refused.get_json()
    assert error_of(refused)["details"]["exceeded"] == [
        {"resource": "instances", "requested": 1, "used": 0, "limit": 0}
    ]
    with rt.db.session() as session:
        assert session.scalar(select(func.count(Instance.id))) == 0
