"""Users: the caller's own account and token, and (admins) everyone's, with their quotas."""

from __future__ import annotations

from bigdata_paas.api import schemas
from bigdata_paas.api.auth import admin_required
from bigdata_paas.api.common import Blueprint, caller, errors, runtime
from bigdata_paas.api.schemas import accounts as account
from bigdata_paas.operations import quotas
from bigdata_paas.operations import users as ops

blp = Blueprint("users", __name__, description="Users, their tokens and quotas")


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
    return ops.create_user(runtime(), user["name"], user["role"], actor=caller().name)


@blp.route("/users/me", methods=["GET"])
@blp.doc(**errors(401))
@blp.response(200, account.UserDetail, description="you, your quota and what you use of it")
def me():
    """Show your account: role, token expiry, and per resource your limit and usage."""
    return ops.describe_user(runtime(), caller().name)


@blp.route("/users/me/token", methods=["POST"])
@blp.doc(**errors(400, 401, 415))
@blp.arguments(account.TokenIn, required=False, description='optional: {"expires_in": 86400}')
@blp.response(201, account.TokenOut, description="the new token, shown this once")
def rotate_my_token(body: dict):
    """Replace your token: the new one is shown this once, the old one is refused from now."""
    return ops.rotate_token(runtime(), caller().name, caller().name, body.get("expires_in"))


@blp.route("/users/<name>", methods=["GET"])
@blp.doc(**errors(401, 403, 404))
@admin_required
@blp.response(200, account.UserDetail, description="the user, their quota and usage")
def user_detail(name: str):
    """Show a user: role, whether disabled, token expiry, quota limits and usage."""
    return ops.describe_user(runtime(), name)


@blp.route("/users/<name>", methods=["PATCH"])
@blp.doc(**errors(400, 401, 403, 404, 409, 415))
@admin_required
@blp.arguments(account.UserPatch)
@blp.response(200, schemas.UserOut, description="changed")
def update_user(changes: dict, name: str):
    """Disable a user (their token is refused; their instances keep running), or enable them."""
    return ops.set_disabled(runtime(), caller().name, name, changes["disabled"])


@blp.route("/users/<name>/token", methods=["POST"])
@blp.doc(**errors(400, 401, 403, 404, 415))
@admin_required
@blp.arguments(account.TokenIn, required=False, description='optional: {"expires_in": 86400}')
@blp.response(201, account.TokenOut, description="the new token, shown this once")
def rotate_token(body: dict, name: str):
    """Give a user a new token (shown this once); their old one is refused from now."""
    return ops.rotate_token(runtime(), caller().name, name, body.get("expires_in"))


@blp.route("/users/<name>/token", methods=["DELETE"])
@blp.doc(**errors(401, 403, 404, 409))
@admin_required
@blp.response(204, description="revoked")
def revoke_token(name: str):
    """Revoke a user's token: refused from now, and no new one until an admin rotates it."""
    ops.revoke_token(runtime(), caller().name, name)


@blp.route("/users/<name>/quota", methods=["PUT"])
@blp.doc(**errors(400, 401, 403, 404, 415))
@admin_required
@blp.arguments(account.QuotaIn, example={"instances": 5, "nodes": None, "cpu": 64})
@blp.response(200, account.QuotaReport, description="the user's limits and usage")
def set_quota(changes: dict, name: str):
    """Set a user's limits: a key given replaces (null: unlimited), a key left out stays."""
    return quotas.set_user_quota(runtime(), caller().name, name, changes)


@blp.route("/quotas/default", methods=["GET"])
@blp.doc(**errors(401, 403))
@admin_required
@blp.response(200, account.QuotaLimits, description="the limits of users with none of their own")
def default_quota():
    """The default limits for everyone (what an admin set, else PAAS_DEFAULT_QUOTA_*)."""
    return quotas.get_default_quota(runtime())


@blp.route("/quotas/default", methods=["PUT"])
@blp.doc(**errors(400, 401, 403, 415))
@admin_required
@blp.arguments(account.QuotaIn, example={"instances": 10})
@blp.response(200, account.QuotaLimits, description="the default limits now")
def set_default_quota(changes: dict):
    """Set default limits for everyone: a key given replaces (null: unlimited), others stay."""
    return quotas.set_default_quota(runtime(), caller().name, changes)
