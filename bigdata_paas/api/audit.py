"""The audit trail of admin actions (admins only)."""

from __future__ import annotations

from bigdata_paas.api.auth import admin_required
from bigdata_paas.api.common import Blueprint, errors, runtime
from bigdata_paas.api.schemas import accounts as account
from bigdata_paas.operations import audit as ops

blp = Blueprint("audit", __name__, description="Who changed what, and when (admins)")


@blp.route("/audit", methods=["GET"])
@blp.doc(**errors(400, 401, 403))
@admin_required
@blp.arguments(account.AuditQuery, location="query")
@blp.response(200, account.AuditPage, description="a page of the trail, newest first")
def audit_trail(query: dict):
    """List admin actions, newest first; filter by action, actor or target."""
    return ops.list_events(runtime(), **query)
