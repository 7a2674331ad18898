"""Where the ``paas`` command finds its server and token.

In order: ``--url`` / ``--token``, then ``PAAS_URL`` / ``PAAS_TOKEN``, then the file ``paas
login`` writes: ``$PAAS_CONFIG``, else ``$XDG_CONFIG_HOME/paas/config.json``, else
``~/.config/paas/config.json``; mode 0600 in a 0700 folder, as it holds a bearer token.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path


def config_path() -> Path:
    if os.environ.get("PAAS_CONFIG"):
        return Path(os.environ["PAAS_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "paas" / "config.json"


@dataclass(frozen=True)
class Settings:
    url: str | None
    token: str | None
    #: where each came from, for messages: "--url", "PAAS_URL", the file's path
    url_from: str = ""
    token_from: str = ""


def load_file(path: Path | None = None) -> dict:
    """The saved settings ({} when there are none); a file others may read is refused."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PermissionError(
            f"{path} holds a token and others may read it (mode {mode:o}); run: chmod 600 {path}"
        )
    data = json.loads(text)
    return data if isinstance(data, dict) else {}


def save_file(url: str, token: str, path: Path | None = None) -> Path:
    """Write the settings with mode 0600 (atomically: never a moment with another mode)."""
    path = path or config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"url": url, "token": token}, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def resolve(url: str | None = None, token: str | None = None) -> Settings:
    """The URL and token from the options, the environment and the file, in that order."""
    found_url, url_from = (url, "--url") if url else (None, "")
    found_token, token_from = (token, "--token") if token else (None, "")
    if not found_url and os.environ.get("PAAS_URL"):
        found_url, url_from = os.environ["PAAS_URL"], "PAAS_URL"
    if not found_token and os.environ.get("PAAS_TOKEN"):
        found_token, token_from = os.environ["PAAS_TOKEN"], "PAAS_TOKEN"
    if not (found_url and found_token):
        path = config_path()
        saved = load_file(path)
        if not found_url and saved.get("url"):
            found_url, url_from = saved["url"], str(path)
        if not found_token and saved.get("token"):
            found_token, token_from = saved["token"], str(path)
    return Settings(found_url, found_token, url_from, token_from)
