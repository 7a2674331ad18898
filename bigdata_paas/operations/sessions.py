"""Browser sessions of the console: a session holds the digest of the token it was opened
with, never the token, and is only as good as that token is now."""

from __future__ import annotations

from sqlalchemy import select

from bigdata_paas.models import User
from bigdata_paas.operations.users import Caller, authenticate, hash_token
from bigdata_paas.runtime import Runtime


def open_session(rt: Runtime, token: str) -> tuple[Caller, str] | None:
    """(the user, the digest a session keeps) for a valid bearer token, else None."""
    user = authenticate(rt, token)
    return None if user is None else (user, hash_token(token))


def session_caller(rt: Runtime, digest: str) -> Caller | None:
    """The user whose current token has ``digest``: a token replaced since the sign-in (a new
    ``PAAS_ADMIN_TOKEN``) ends the session."""
    if not isinstance(digest, str) or len(digest) != 64:
        return None
    with rt.db.session() as session:
        user = session.scalar(select(User).where(User.token_hash == digest))
        return Caller(user.id, user.name, user.role) if user is not None else None
