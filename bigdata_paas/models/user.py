"""Users and their bearer tokens (stored as SHA-256 digests, never in clear)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, String, false
from sqlalchemy.orm import Mapped, mapped_column

from bigdata_paas.models.base import Base, iso, utcnow

ROLES = ("admin", "user")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'user')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A disabled user's token is refused; what they launched keeps running.
    disabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The token is refused from this moment on (None: it never expires).
    token_expires_at: Mapped[datetime | None]
    # Limits set for this user alone (operations/quotas.py): a key present overrides the
    # default for everyone, with null meaning unlimited; a key absent follows the default.
    quota: Mapped[dict | None]

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "role": self.role,
            "disabled": self.disabled,
            "token_expires_at": iso(self.token_expires_at),
        }
