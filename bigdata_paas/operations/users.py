"""Users, tokens and the bootstrap admin."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from bigdata_paas.errors import Conflict, ValidationError
from bigdata_paas.models import ROLES, User
from bigdata_paas.names import USER_NAME


def hash_token(token: str) -> str:
    """Digest a bearer token; tokens are 256-bit random, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def authenticate(session: Session, token: str) -> User | None:
    """Return the user holding ``token``, or None."""
    if not token or len(token) > 256:
        return None
    return session.scalar(select(User).where(User.token_hash == hash_token(token)))


def create_user(session: Session, name: str, role: str = "user") -> tuple[User, str]:
    """Create a user and return it with its token, which is shown this once."""
    problems = []
    if not USER_NAME.matches(name):
        problems.append({"field": "name", "message": USER_NAME.message})
    if role not in ROLES:
        problems.append({"field": "role", "message": f"must be one of {', '.join(ROLES)}"})
    if problems:
        raise ValidationError(problems)
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    token = new_token()
    user = User(name=name, role=role, token_hash=hash_token(token))
    session.add(user)
    session.commit()
    return user, token


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def ensure_admin(session: Session, token: str = "") -> str | None:
    """Make sure the user ``admin`` exists; return a newly generated token, else None.

    With ``token`` given, ``admin`` holds exactly that token. Without it, a token
    is generated only the first time, so it is printed once and never again.
    """
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
