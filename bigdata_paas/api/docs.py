"""Swagger UI's files, served by the app itself so that /docs works without internet.

The files come pinned from the ``swagger-ui-bundle`` package (Swagger UI 4.15.5, Apache-2.0);
they sit behind the same authentication as the docs page (api/auth.py BROWSER_ENDPOINTS).
"""

from __future__ import annotations

import functools
import mimetypes

from flask import Blueprint, Response
from swagger_ui_bundle import swagger_ui_path
from werkzeug.security import safe_join

from bigdata_paas.errors import NotFound

#: where the files are served, below the API prefix
ASSETS = "/docs/assets/"
#: what the page and its scripts load (source maps for a browser's developer tools)
SUFFIXES = (".js", ".css", ".map", ".png")

blp = Blueprint("docs_assets", __name__)


@functools.cache
def _read(filename: str) -> bytes | None:
    """The file's bytes (a few MB in all, read once per process), None if there is none."""
    path = safe_join(str(swagger_ui_path), filename)  # None for anything outside the folder
    if path is None or not filename.endswith(SUFFIXES):
        return None
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return None


@blp.route(f"{ASSETS}<path:filename>", methods=["GET"])
def asset(filename: str) -> Response:
    """One of Swagger UI's files (never anything outside its folder)."""
    data = _read(filename)
    if data is None:
        raise NotFound(f"no such documentation asset: {filename}")
    mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    response = Response(data, mimetype=mimetype)
    response.cache_control.max_age = 3600
    return response
