"""Schemas of users."""

from __future__ import annotations

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
)

from bigdata_paas import names
from bigdata_paas.api.schemas.base import Strict, name_field
from bigdata_paas.models import ROLES


class UserIn(Strict):
    name = name_field(names.USER_NAME, required=True, metadata={"example": "alice"})

    @validates("name")
    def _not_me(self, value: str, **_) -> None:
        if value == "me":  # /users/me is the caller
            raise ValidationError("'me' is reserved: /users/me names whoever calls")

    role = fields.String(
        load_default="user", validate=validate.OneOf(ROLES, error="must be one of {choices}")
    )


class UserOut(Schema):
    name = fields.String()
    role = fields.String(metadata={"enum": list(ROLES)})
    disabled = fields.Boolean(metadata={"description": "a disabled user's token is refused"})
    token_expires_at = fields.String(
        allow_none=True, metadata={"description": "when the token stops working (null: never)"}
    )


class UserCreated(UserOut):
    token = fields.String(metadata={"description": "the bearer token, shown this once"})


class UsersOut(Schema):
    users = fields.List(fields.Nested(UserOut))
