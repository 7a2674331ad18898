"""Who runs what users wrote: orquestrator scripts and process-driver nodes drop to ``nobody``
when the platform runs as root, and stay as the platform's own user otherwise."""

from __future__ import annotations

import os
import pwd


def unprivileged_user() -> pwd.struct_passwd | None:
    """``nobody`` when we run as root, else None (nothing to drop)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None
