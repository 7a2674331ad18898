"""Secrets the platform generates for itself when the operator sets none."""

from __future__ import annotations

import contextlib
import os
import secrets

from bigdata_paas.settings import Config


def flower_password(config: Config) -> tuple[str, bool]:
    """The Flower password: from the environment, or generated once into DATA_DIR; (password,
    whether it was generated now)."""
    if config.FLOWER_PASSWORD:
        return config.FLOWER_PASSWORD, False
    path = config.data_path / "flower-password"
    if path.exists():
        return path.read_text().strip(), False
    password = secrets.token_urlsafe(18)
    path.touch(mode=0o600)
    path.write_text(password)
    return password, True


def console_secret_key(config: Config) -> str:
    """The key that signs the console's session cookies: from the environment, or generated
    once into DATA_DIR (web processes on several machines must share one: set it there).

    Each gunicorn worker builds the app: the first to link its key in place wins, and the
    others read that one, so every worker signs with the same key.
    """
    if config.CONSOLE_SECRET_KEY:
        return config.CONSOLE_SECRET_KEY
    path = config.data_path / "console-secret-key"
    if not path.exists():
        draft = path.with_name(f".console-secret-key.{os.getpid()}")
        draft.touch(mode=0o600)
        draft.write_text(secrets.token_urlsafe(32))
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    return path.read_text().strip()
