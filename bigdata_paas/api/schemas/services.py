"""Schemas of the catalog: services, their options documents, launches."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import (
    INCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
)

from bigdata_paas import names
from bigdata_paas.api.schemas.base import Matches, QueryInteger, Strict, name_field


class ServiceIn(Strict):
    name = name_field(names.SERVICE_NAME, required=True, metadata={"example": "gluster"})
    version = name_field(names.VERSION, required=True, metadata={"example": "3.7.11"})
    description = fields.String(
        load_default="",
        validate=validate.Length(max=2000),
        metadata={"example": "GlusterFS parallel filesystem cluster"},
    )


class ServiceOut(Schema):
    name = fields.String()
    version = fields.String()
    description = fields.String()
    template = fields.Boolean(metadata={"description": "a template is set"})
    template_format = fields.String(metadata={"enum": ["json", "yaml"]})
    options = fields.Boolean(metadata={"description": "an options document is set"})
    orquestrator = fields.Boolean(metadata={"description": "an orquestrator is set"})
    orquestrator_timeout = fields.Integer(
        allow_none=True, metadata={"description": "seconds; null for the default"}
    )
    ready = fields.Boolean(metadata={"description": "template, options and orquestrator set"})
    missing = fields.List(fields.String(), metadata={"description": "the parts still to set"})
    created_at = fields.String()
    updated_at = fields.String()


class UploadWarning(Schema):
    field = fields.String(metadata={"description": "where, e.g. descriptions.slaves.disks"})
    message = fields.String(metadata={"description": "what was accepted and left out"})


class OptionsStored(ServiceOut):
    warnings = fields.List(
        fields.Nested(UploadWarning),
        metadata={
            "description": "what the stored document leaves out, e.g. a description of an "
            "option no longer declared; empty when nothing was"
        },
    )


class CatalogEntry(Schema):
    name = fields.String()
    description = fields.String()
    versions = fields.List(fields.String())


class CatalogOut(Schema):
    services = fields.List(fields.Nested(CatalogEntry))


class VersionsOut(Schema):
    name = fields.String()
    versions = fields.List(fields.Nested(ServiceOut))


class OptionsDocument(Schema):
    """Documents the options document; ``rendering.options`` checks it (every problem)."""

    required = fields.Dict(
        keys=fields.String(), metadata={"description": "options a launch may set, with defaults"}
    )
    optional = fields.Dict(keys=fields.String())
    advanced = fields.Dict(keys=fields.String())
    descriptions = fields.Dict(keys=fields.String(), values=fields.String())
    limits = fields.Dict(
        keys=fields.String(),
        metadata={"description": "per option: min, max, choices, pattern, max_length"},
    )


class OptionValues(Schema):
    """A launch's option values: any names, checked against the service's options document
    by ``rendering.options`` (unknown names, types, limits), every problem at once."""

    error_messages = {"type": "launch options must be a JSON object"}

    class Meta:
        unknown = INCLUDE

    @post_load(pass_original=True)
    def in_the_senders_order(self, data: dict, original: Any, **_: Any) -> dict:
        """marshmallow gathers unknown names in a set: give them back in the order sent, so
        the problems (and the merged options) always come in that order."""
        return {name: data[name] for name in original if name in data}


class ScriptQuery(Strict):
    timeout = QueryInteger(
        validate=validate.Range(min=1, error="must be whole seconds, at least 1"),
        metadata={
            "description": "seconds a command of this service may run, up to "
            "PAAS_ORQUESTRATOR_MAX_TIMEOUT (default PAAS_ORQUESTRATOR_TIMEOUT)"
        },
    )

    @validates("timeout")
    def _at_most_the_maximum(self, value: int, **_) -> None:
        highest = int(current_app.extensions["paas"].config.ORQUESTRATOR_MAX_TIMEOUT)
        if value > highest:
            raise ValidationError(f"must be whole seconds, 1..{highest}")


class LaunchHeaders(Schema):
    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=Matches(names.IDEMPOTENCY_KEY),
        metadata={
            "description": "makes the launch safe to retry: the same key with the same "
            "service, version and options answers the first launch's instance again "
            "(202, same id and Location, header Idempotent-Replayed: true) and starts "
            "nothing; with anything else it is a 409 (idempotency_key_reused). Keys are "
            "per user and live as long as the instance; a launch that answered 503 left "
            "nothing, so its key launches anew.",
            "example": "5f1c2e0a-launch-1",
        },
    )
