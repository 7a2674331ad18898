"""Liveness of the web process, the database and the broker; no auth, no secrets."""

from __future__ import annotations

from flask import jsonify
from flask_smorest import Blueprint
from sqlalchemy import text

from bigdata_paas.api import schemas
from bigdata_paas.api.common import responses, runtime

blp = Blueprint("health", __name__, description="Liveness")


@blp.route("/health", methods=["GET"])
@blp.doc(
    security=[],
    **responses(
        (200, schemas.Health, "all up"), (503, schemas.Health, "something is down"), errors=()
    ),
)
def health():
    """Report whether the web process, the database and the broker answer."""
    rt = runtime()
    body = {"status": "ok", "web": "ok", "database": "ok", "broker": "ok"}
    try:
        with rt.db.session() as session:
            session.execute(text("SELECT 1"))
            session.commit()
    except Exception:  # any failure means unreachable
        body["database"] = "unreachable"
    try:
        with rt.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=rt.config.PUBLISH_TIMEOUT)
    except Exception:  # any failure means unreachable
        body["broker"] = "unreachable"
    if "unreachable" in body.values():
        body["status"] = "degraded"
        return jsonify(body), 503
    return jsonify(body)
