"""Catalog entries: a name/version with its template, options and orquestrator."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bigdata_paas.models.base import Base, iso, utcnow


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    template: Mapped[str | None] = mapped_column(Text)
    template_format: Mapped[str] = mapped_column(String(8), default="json")
    options: Mapped[dict | None]
    orquestrator: Mapped[str | None] = mapped_column(Text)
    # Seconds an orquestrator command of this service may run; NULL: PAAS_ORQUESTRATOR_TIMEOUT.
    orquestrator_timeout: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def missing(self) -> list[str]:
        """The parts still to upload before the service can launch."""
        return missing_parts(self.template, self.options, self.orquestrator is not None)

    @property
    def ready(self) -> bool:
        return not self.missing

    def to_dict(self) -> dict:
        missing = self.missing
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "template": self.template is not None,
            "template_format": self.template_format,
            "options": self.options is not None,
            "orquestrator": self.orquestrator is not None,
            "orquestrator_timeout": self.orquestrator_timeout,
            "ready": not missing,
            "missing": missing,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


def missing_parts(template: str | None, options: dict | None, orquestrator: bool) -> list[str]:
    """The parts of a service still to upload before it can launch, of its ``template``, its
    ``options`` and whether it has an ``orquestrator``."""
    parts = (
        ("template", template is not None),
        ("options", options is not None),
        ("orquestrator", orquestrator),
    )
    return [part for part, present in parts if not present]
