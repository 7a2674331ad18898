"""Secrets the platform generates for itself when the operator sets none."""

from __future__ import annotations

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
