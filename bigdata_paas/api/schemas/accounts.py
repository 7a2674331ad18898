"""The shapes of a user's account: quota limits and usage, tokens, and the audit trail."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from bigdata_paas import names
from bigdata_paas.api.schemas.base import MAX_COUNT, PageQuery, Strict, name_field
from bigdata_paas.api.schemas.users import UserOut

RESOURCES = ("instances", "nodes", "cpu", "mem", "disks")
#: the longest life a token may be given (ten years, in seconds)
MAX_EXPIRES_IN = 10 * 366 * 86400

_LIMIT = {
    "instances": "live instances (every status but failed and destroyed)",
    "nodes": "nodes of those instances",
    "cpu": "cores of those nodes",
    "mem": "memory of those nodes (MB)",
    "disks": "disks of those nodes",
}


def _limit(resource: str) -> fields.Integer:
    return fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(0, MAX_COUNT, error="must be an integer >= 0, or null"),
        metadata={"description": f"{_LIMIT[resource]}; null: unlimited"},
    )


class QuotaIn(Strict):
    """Limits to set: a key given replaces its value (null: unlimited), a key left out stays."""

    instances = _limit("instances")
    nodes = _limit("nodes")
    cpu = _limit("cpu")
    mem = _limit("mem")
    disks = _limit("disks")


class QuotaLimits(Schema):
    instances = fields.Integer(allow_none=True)
    nodes = fields.Integer(allow_none=True)
    cpu = fields.Integer(allow_none=True)
    mem = fields.Integer(allow_none=True)
    disks = fields.Integer(allow_none=True)


class QuotaUse(Schema):
    limit = fields.Integer(allow_none=True, metadata={"description": "null: unlimited"})
    used = fields.Integer(metadata={"description": "held by the user's live instances"})


class QuotaReport(Schema):
    instances = fields.Nested(QuotaUse)
    nodes = fields.Nested(QuotaUse)
    cpu = fields.Nested(QuotaUse)
    mem = fields.Nested(QuotaUse)
    disks = fields.Nested(QuotaUse)


class UserDetail(UserOut):
    quota = fields.Nested(QuotaReport)


class JsonBoolean(fields.Boolean):
    """true or false, nothing else (not "yes", not 1)."""

    default_error_messages = {"invalid": "must be true or false"}

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class UserPatch(Strict):
    disabled = JsonBoolean(
        required=True,
        metadata={"description": "true: the token is refused, the instances keep running"},
    )


class TokenIn(Strict):
    #: no body at all is a token that never expires
    EMPTY_BODY: dict = {}

    expires_in = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(1, MAX_EXPIRES_IN, error="must be seconds, 1..{max}"),
        metadata={"description": "seconds the new token works (null or absent: no expiry)"},
    )


class TokenOut(Schema):
    name = fields.String()
    token = fields.String(metadata={"description": "the bearer token, shown this once"})
    expires_at = fields.String(allow_none=True)


class AuditQuery(PageQuery):
    action = fields.String(
        validate=validate.Length(1, 64), metadata={"example": "service.orquestrator_changed"}
    )
    actor = name_field(names.USER_NAME, metadata={"description": "who did it"})
    target = fields.String(validate=validate.Length(1, 255), metadata={"example": "user:alice"})


class AuditEventOut(Schema):
    id = fields.Integer()
    at = fields.String()
    actor = fields.String()
    action = fields.String()
    target = fields.String()
    details = fields.Dict(metadata={"description": "what changed (a sha256 of uploaded content)"})


class AuditPage(Schema):
    items = fields.List(fields.Nested(AuditEventOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
