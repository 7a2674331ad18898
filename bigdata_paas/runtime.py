"""What a use case needs from its process: settings, the database and the Celery app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bigdata_paas.settings import Config

if TYPE_CHECKING:
    from celery import Celery

    from bigdata_paas.db import Database


@dataclass
class Runtime:
    config: Config
    db: Database
    celery: Celery

    def render_limits(self):
        from bigdata_paas.rendering import RenderLimits

        return RenderLimits(
            timeout=self.config.RENDER_TIMEOUT,
            max_output=self.config.RENDER_MAX_OUTPUT,
            max_memory=self.config.RENDER_MAX_MEMORY_MB * 1024 * 1024,
        )
