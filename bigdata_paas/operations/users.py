"""Users, tokens and the bootstrap admin."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import Select, Table, bindparam, null, select, text
from sqlalchemy.orm import Session

from bigdata_paas.errors import Conflict, NotFound, Unauthorized
from bigdata_paas.models import User, iso, utcnow
from bigdata_paas.operations import audit, quotas
from bigdata_paas.operations.reads import driver_row, read_connection
from bigdata_paas.runtime import Runtime


@dataclass(frozen=True)
class Caller:
    """Who sends a request: what the use cases need of a user, without a database session."""

    id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_token(token: str) -> str:
    """Digest a bearer token; tokens are 256-bit random, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


_U = cast(Table, User.__table__).alias("u")


class Rider(NamedTuple):
    """What a request's first read asks along with its token check, in the same statement
    (PostgreSQL; one round trip instead of two): ``column``, an SQL expression over ``u``,
    the caller's row of users, with ``:name`` parameters given in ``params``."""

    column: str
    params: dict[str, Any]


@functools.cache
def token_check(rider_column: str | None = None) -> Select:
    """The token check: what it reads of the token's user (``:digest``), a Caller and what
    refusal looks at, then the rider's column (NULL without one); made once per rider."""
    ridden = text(rider_column) if rider_column else null()
    return select(
        _U.c.id, _U.c.name, _U.c.role, _U.c.disabled, _U.c.token_expires_at, ridden
    ).where(_U.c.token_hash == bindparam("digest"))


def refusal(name: str, disabled: bool, expires: datetime | None) -> str | None:
    """Why a user's current token is refused now (a disabled user, an expired token), or
    None when it works."""
    if disabled:
        return f"user {name} is disabled; ask an admin"
    if expires is not None and expires <= utcnow():
        return f"this token expired at {iso(expires)}; ask for a new one"
    return None


def authenticate(rt: Runtime, token: str) -> Caller | None:
    """The user holding ``token``, or None; raise Unauthorized naming why for the token of a
    disabled user or an expired one."""
    return authenticate_riding(rt, token)[0]


def authenticate_riding(
    rt: Runtime, token: str, rider: Rider | None = None
) -> tuple[Caller | None, Any]:
    """authenticate(), and what ``rider`` read in the same statement (None on SQLite, where
    the view reads it itself, and for a token that is refused)."""
    if not token or len(token) > 256:
        return None, None
    return caller_by_digest_riding(rt, hash_token(token), rider)


def caller_by_digest(rt: Runtime, digest: str) -> Caller | None:
    """The user whose current token has ``digest`` (what is stored of a token), or None;
    raise Unauthorized naming why for a disabled user or an expired token."""
    return caller_by_digest_riding(rt, digest)[0]


def caller_by_digest_riding(
    rt: Runtime, digest: str, rider: Rider | None = None
) -> tuple[Caller | None, Any]:
    """caller_by_digest(), and what ``rider`` read along (see authenticate_riding)."""
    # Every request asks again (a revoked token or a disabled user is refused at once): the
    # columns it needs by the unique index on token_hash, no ORM object, no transaction; on
    # PostgreSQL on the driver itself, with the request's first read riding along.
    params = {"digest": digest}
    row: tuple | None
    if rt.db.is_sqlite:  # the rider is PostgreSQL's: the view reads it itself
        with read_connection(rt) as conn:
            row = conn.execute(token_check(), params).first()
    elif rider is None:
        row = driver_row(rt, token_check(), params)
    else:
        row = driver_row(rt, token_check(rider.column), {**rider.params, **params})
    if row is None:
        return None, None
    user_id, name, role, disabled, expires, ridden = row
    reason = refusal(name, disabled, expires)
    if reason:
        raise Unauthorized(reason)
    return Caller(user_id, name, role), ridden


def create_user(rt: Runtime, name: str, role: str = "user", *, actor: str) -> dict:
    """Create a user; the answer holds its token, which is shown this once.

    ``name`` and ``role`` are checked by the caller (the API's and the CLI's ``UserIn``).
    """
    with rt.db.session() as session:
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise Conflict(f"user {name!r} already exists")
        token = new_token()
        user = User(name=name, role=role, token_hash=hash_token(token))
        session.add(user)
        audit.record(session, actor, "user.created", f"user:{name}", role=role)
        session.commit()
        return {**user.to_dict(), "token": token}


def _user(session: Session, name: str, *, lock: bool = False) -> User:
    query = select(User).where(User.name == name)
    user = session.scalar(query.with_for_update() if lock else query)
    if user is None:
        raise NotFound(f"user {name} not found")
    return user


def describe_user(rt: Runtime, name: str) -> dict:
    """The user, with per resource the quota ``limit`` and what their live instances use."""
    with rt.db.session() as session:
        user = _user(session, name)
        return {**user.to_dict(), "quota": quotas.report(session, rt.config, user)}


def rotate_token(rt: Runtime, actor: str, name: str, expires_in: int | None = None) -> dict:
    """Give ``name`` a new token, shown this once; the old one is refused from now on.
    With ``expires_in`` (seconds) the new token is refused after that too."""
    with rt.db.session() as session:
        user = _user(session, name, lock=True)
        token = new_token()
        user.token_hash = hash_token(token)
        user.token_expires_at = utcnow() + timedelta(seconds=expires_in) if expires_in else None
        audit.record(
            session,
            actor,
            "token.rotated",
            f"user:{name}",
            expires_at=iso(user.token_expires_at),
        )
        session.commit()
        return {"name": name, "token": token, "expires_at": iso(user.token_expires_at)}


def revoke_token(rt: Runtime, actor: str, name: str) -> None:
    """Refuse ``name``'s token from now on; they have none until an admin rotates it."""
    with rt.db.session() as session:
        user = _user(session, name, lock=True)
        if name == actor:
            raise Conflict("you cannot revoke your own token; rotate it (POST /users/me/token)")
        user.token_hash = hash_token(new_token())  # a token nobody was ever shown
        user.token_expires_at = None
        audit.record(session, actor, "token.revoked", f"user:{name}")
        session.commit()


def set_disabled(rt: Runtime, actor: str, name: str, disabled: bool) -> dict:
    """Disable (or enable again) ``name``: a disabled user's token is refused, and what they
    launched keeps running. An admin cannot disable themselves (nobody could undo it)."""
    with rt.db.session() as session:
        user = _user(session, name, lock=True)
        if disabled and name == actor:
            raise Conflict("you cannot disable yourself; another admin can")
        if user.disabled != disabled:
            user.disabled = disabled
            action = "user.disabled" if disabled else "user.enabled"
            audit.record(session, actor, action, f"user:{name}")
        session.commit()
        return user.to_dict()


def list_users(rt: Runtime) -> list[dict]:
    with rt.db.session() as session:
        return [u.to_dict() for u in session.scalars(select(User).order_by(User.name))]


def the_admin(rt: Runtime) -> Caller:
    """The bootstrap user ``admin``, for operator commands run on the platform's machine."""
    with rt.db.session() as session:
        admin = session.scalar(select(User).where(User.name == "admin"))
        if admin is None:
            raise NotFound("there is no user admin yet: run `flask --app wsgi paas setup`")
        return Caller(admin.id, admin.name, admin.role)


def ensure_admin(rt: Runtime, token: str = "") -> str | None:
    """Make sure the user ``admin`` exists; return a newly generated token, else None.

    With ``token`` given, ``admin`` holds exactly that token, enabled and without expiry: the
    operator's way back in after a rotation or a lock-out. Without it, a token is generated
    only the first time, so it is printed once and never again.
    """
    with rt.db.session() as session:
        admin = session.scalar(select(User).where(User.name == "admin"))
        if token:
            digest = hash_token(token)
            if admin is None:
                session.add(User(name="admin", role="admin", token_hash=digest))
            else:
                admin.token_hash, admin.role = digest, "admin"
                admin.disabled, admin.token_expires_at = False, None
            session.commit()
            return None
        if admin is not None:
            return None
        generated = new_token()
        session.add(User(name="admin", role="admin", token_hash=hash_token(generated)))
        session.commit()
        return generated
