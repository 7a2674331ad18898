"""Users, tokens and the bootstrap admin."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from bigdata_paas.errors import Conflict, NotFound
from bigdata_paas.models import User
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


def authenticate(rt: Runtime, token: str) -> Caller | None:
    """The user holding ``token``, or None."""
    if not token or len(token) > 256:
        return None
    with rt.db.session() as session:
        user = session.scalar(select(User).where(User.token_hash == hash_token(token)))
        return Caller(user.id, user.name, user.role) if user is not None else None


def create_user(rt: Runtime, name: str, role: str = "user") -> dict:
    """Create a user; the answer holds its token, which is shown this once.

    ``name`` and ``role`` are checked by the caller (the API's and the CLI's ``UserIn``).
    """
    with rt.db.session() as session:
        if session.scalar(select(User.id).where(User.name == name)) is not None:
            raise Conflict(f"user {name!r} already exists")
        token = new_token()
        user = User(name=name, role=role, token_hash=hash_token(token))
        session.add(user)
        session.commit()
        return {**user.to_dict(), "token": token}


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

    With ``token`` given, ``admin`` holds exactly that token. Without it, a token
    is generated only the first time, so it is printed once and never again.
    """
    with rt.db.session() as session:
        admin = session.scalar(select(User).where(User.name == "admin"))
        if token:
            digest = hash_token(token)
            if admin is None:
                session.add(User(name="admin", role="admin", token_hash=digest))
            else:
                admin.token_hash, admin.role = digest, "admin"
            session.commit()
            return None
        if admin is not None:
            return None
        generated = new_token()
        session.add(User(name="admin", role="admin", token_hash=hash_token(generated)))
        session.commit()
        return generated
