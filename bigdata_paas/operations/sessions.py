"""Browser sessions of the console: a session holds the digest of the token it was opened
with, never the token, and is only as good as that token is now."""

from __future__ import annotations

from bigdata_paas.errors import Unauthorized
from bigdata_paas.operations.users import Caller, authenticate, caller_by_digest, hash_token
from bigdata_paas.runtime import Runtime


def open_session(rt: Runtime, token: str) -> tuple[Caller, str] | None:
    """(the user, the digest a session keeps) for a valid bearer token, else None; raise
    Unauthorized naming why for a disabled user's token or an expired one."""
    user = authenticate(rt, token)
    return None if user is None else (user, hash_token(token))


def session_caller(rt: Runtime, digest: str) -> Caller | None:
    """The user whose current token has ``digest``, while it works: a token replaced since
    the sign-in, expired or revoked, or a user disabled, ends the session."""
    if not isinstance(digest, str) or len(digest) != 64:
        return None
    try:
        return caller_by_digest(rt, digest)
    except Unauthorized:  # signed out: the sign-in page says why when the token is sent again
        return None
