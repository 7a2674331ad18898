"""Users (admins only)."""

from __future__ import annotations

from flask import jsonify
from flask_smorest import Blueprint

from bigdata_paas.api import schemas
from bigdata_paas.api.auth import admin_required
from bigdata_paas.api.common import doc_body, json_body, responses, runtime
from bigdata_paas.errors import ValidationError
from bigdata_paas.operations import users as ops

blp = Blueprint("users", __name__, description="Users and their tokens (admins)")


@blp.route("/users", methods=["GET"])
@blp.doc(**responses((200, schemas.Users, "every user"), errors=(401, 403)))
@admin_required
def list_users():
    """List users and their roles."""
    with runtime().db.session() as session:
        return jsonify({"users": [u.to_dict() for u in ops.list_users(session)]})


@blp.route("/users", methods=["POST"])
@blp.doc(
    **doc_body(schemas.UserIn),
    **responses(
        (201, schemas.User, "created; the token is shown this once"),
        errors=(400, 401, 403, 409, 415),
    ),
)
@admin_required
def create_user():
    """Create a user; the answer holds its token, shown only this once."""
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object {name, role}")
    unknown = sorted(set(body) - {"name", "role"})
    if unknown:
        raise ValidationError([{"field": k, "message": "unknown field"} for k in unknown])
    with runtime().db.session() as session:
        user, token = ops.create_user(session, body.get("name"), body.get("role", "user"))
        return jsonify({**user.to_dict(), "token": token}), 201
