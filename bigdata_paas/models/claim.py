"""Named claims: one row per platform-wide job, so that a job asked for many times runs once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from bigdata_paas.models.base import Base


class Claim(Base):
    """``at`` is when the job was last asked for (or claimed); None when nobody waits for it."""

    __tablename__ = "claims"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime | None] = mapped_column(nullable=True)
