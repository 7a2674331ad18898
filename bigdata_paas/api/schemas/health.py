"""Schemas of health and the probes."""

from __future__ import annotations

from marshmallow import (
    Schema,
    fields,
)


class HealthOut(Schema):
    status = fields.String(metadata={"enum": ["ok", "degraded"]})
    web = fields.String(metadata={"enum": ["ok"]})
    database = fields.String(metadata={"enum": ["ok", "unreachable"]})
    broker = fields.String(metadata={"enum": ["ok", "unreachable"]})


class LiveOut(Schema):
    status = fields.String(metadata={"enum": ["ok"]})


class ReadyOut(Schema):
    status = fields.String(metadata={"enum": ["ready", "unready"]})
    database = fields.String(metadata={"enum": ["ok", "unreachable"]})
    broker = fields.String(metadata={"enum": ["ok", "unreachable"]})
    failed = fields.List(
        fields.String(metadata={"enum": ["database", "broker"]}),
        metadata={"description": "the dependencies that did not answer"},
    )
