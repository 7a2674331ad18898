"""Swagger UI's files, served by the app itself so that /docs works without internet.

The files come pinned from the ``swagger-ui-bundle`` package (Swagger UI 4.15.5, Apache-2.0);
they sit behind the same authentication as the docs page (api/auth.py BROWSER_ENDPOINTS).
"""

from __future__ import annotations

from flask import Blueprint, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from bigdata_paas.errors import NotFound

#: where the files are served, below the API prefix
ASSETS = "/docs/assets/"
#: what the page and its scripts load (source maps for a browser's developer tools)
SUFFIXES = (".js", ".css", ".map", ".png")

blp = Blueprint("docs_assets", __name__)


@blp.route(f"{ASSETS}<path:filename>", methods=["GET"])
def asset(filename: str):
    """One of Swagger UI's files (never anything outside its folder)."""
    if not filename.endswith(SUFFIXES):
        raise NotFound(f"no such documentation asset: {filename}")
    return send_from_directory(str(swagger_ui_path), filename, max_age=3600)
