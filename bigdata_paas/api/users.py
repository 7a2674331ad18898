"""Users (admins only)."""

from __future__ import annotations

from bigdata_paas.api import schemas
from bigdata_paas.api.auth import admin_required
from bigdata_paas.api.common import Blueprint, errors, runtime
from bigdata_paas.operations import users as ops

blp = Blueprint("users", __name__, description="Users and their tokens (admins)")


@blp.route("/users", methods=["GET"])
@blp.doc(**errors(401, 403))
@admin_required
@blp.response(200, schemas.UsersOut, description="every user")
def list_users():
    """List users and their roles."""
    return {"users": ops.list_users(runtime())}


@blp.route("/users", methods=["POST"])
@blp.doc(**errors(400, 401, 403, 409, 415))
@admin_required
@blp.arguments(schemas.UserIn)
@blp.response(201, schemas.UserCreated, description="created; the token is shown this once")
def create_user(user: dict):
    """Create a user; the answer holds its token, shown only this once."""
    return ops.create_user(runtime(), user["name"], user["role"])
