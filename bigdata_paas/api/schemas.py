"""Marshmallow schemas that document the API in the OpenAPI document.

Request bodies are validated by the operations (which report every problem at
once, in the error envelope); these schemas describe the shapes for clients.
"""

from __future__ import annotations

from marshmallow import Schema, fields


class ErrorBody(Schema):
    code = fields.String(
        required=True, metadata={"description": "stable machine code, e.g. invalid_input"}
    )
    message = fields.String(
        required=True, metadata={"description": "what is wrong, naming the field"}
    )
    details = fields.Dict()


class Error(Schema):
    error = fields.Nested(ErrorBody, required=True)
    status = fields.Integer(required=True, metadata={"description": "the HTTP status again"})


class ServiceIn(Schema):
    name = fields.String(required=True, metadata={"example": "gluster"})
    version = fields.String(required=True, metadata={"example": "3.7.11"})
    description = fields.String(metadata={"example": "GlusterFS parallel filesystem cluster"})


class Service(Schema):
    name = fields.String()
    version = fields.String()
    description = fields.String()
    template = fields.Boolean(metadata={"description": "a template is set"})
    template_format = fields.String()
    options = fields.Boolean()
    orquestrator = fields.Boolean()
    orquestrator_timeout = fields.Integer(
        allow_none=True, metadata={"description": "seconds; null for the default"}
    )
    ready = fields.Boolean()
    missing = fields.List(fields.String())
    created_at = fields.String()
    updated_at = fields.String()


class UploadWarning(Schema):
    field = fields.String(metadata={"description": "where, e.g. descriptions.slaves.disks"})
    message = fields.String(metadata={"description": "what was accepted and left out"})


class OptionsStored(Service):
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


class Catalog(Schema):
    services = fields.List(fields.Nested(CatalogEntry))


class Versions(Schema):
    name = fields.String()
    versions = fields.List(fields.Nested(Service))


class OptionsDocument(Schema):
    required = fields.Dict()
    optional = fields.Dict()
    advanced = fields.Dict()
    descriptions = fields.Dict(keys=fields.String(), values=fields.String())
    limits = fields.Dict()


class Node(Schema):
    name = fields.String()
    cpu = fields.Integer()
    mem = fields.Integer()
    host = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    disks = fields.List(fields.Dict())
    networks = fields.Dict()
    services = fields.List(fields.String())
    check_ports = fields.List(
        fields.Integer(), metadata={"description": "ports that must answer before running"}
    )


class InstanceError(Schema):
    step = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


class Instance(Schema):
    id = fields.String()
    name = fields.String()
    service = fields.String()
    version = fields.String()
    user = fields.String(allow_none=True)
    status = fields.String(
        metadata={
            "enum": [
                "pending",
                "prepared",
                "submitted",
                "queued",
                "scheduled",
                "running",
                "failed",
                "destroying",
                "destroyed",
            ]
        }
    )
    options = fields.Dict()
    merged_options = fields.Dict(allow_none=True)
    nodes = fields.List(fields.Nested(Node))
    services = fields.Dict()
    error = fields.Nested(InstanceError)
    waiting_for = fields.String()
    created_at = fields.String()
    updated_at = fields.String()


class InstancePage(Schema):
    items = fields.List(fields.Nested(Instance))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class Event(Schema):
    at = fields.String()
    step = fields.String()
    status = fields.String()
    message = fields.String()


class Events(Schema):
    events = fields.List(fields.Nested(Event))


class LogLine(Schema):
    id = fields.Integer()
    at = fields.String()
    command = fields.String()
    stream = fields.String()
    line = fields.String()


class Logs(Schema):
    lines = fields.List(fields.Nested(LogLine))
    last = fields.Integer(metadata={"description": "pass as ?after= to follow new lines"})


class Plan(Schema):
    service = fields.String()
    version = fields.String()
    strategy = fields.String(metadata={"enum": ["binpack", "spread"]})
    fits = fields.Boolean()
    reason = fields.String()
    nodes = fields.Integer()
    cpu = fields.Integer()
    mem = fields.Integer()
    placement = fields.List(fields.Dict())
    shortages = fields.List(fields.Dict())


class HostDisk(Schema):
    name = fields.String(required=True)
    type = fields.String(metadata={"example": "hdd"})
    size = fields.Integer()


class HostIn(Schema):
    name = fields.String(required=True, metadata={"example": "node01"})
    address = fields.String(required=True, metadata={"example": "127.0.0.1"})
    cpu = fields.Integer(required=True)
    mem = fields.Integer(required=True, metadata={"description": "MB"})
    disks = fields.List(fields.Nested(HostDisk))
    networks = fields.List(fields.String())
    labels = fields.Dict(keys=fields.String(), values=fields.String())
    state = fields.String(metadata={"enum": ["up", "drain", "down"]})


class HostPatch(Schema):
    state = fields.String(metadata={"enum": ["up", "drain", "down"]})
    labels = fields.Dict(keys=fields.String(), values=fields.String())


class HostDiskState(HostDisk):
    free = fields.Boolean(metadata={"description": "no node holds it"})


class Host(HostIn):
    disks = fields.List(fields.Nested(HostDiskState))
    allocated = fields.Dict()
    free = fields.Dict()
    nodes = fields.List(fields.Dict())
    created_at = fields.String()


class Hosts(Schema):
    hosts = fields.List(fields.Nested(Host))


class NetworkIn(Schema):
    name = fields.String(required=True, metadata={"example": "lan"})
    cidr = fields.String(required=True, metadata={"example": "10.0.0.0/24"})
    gateway = fields.String(allow_none=True)
    bridge = fields.String(allow_none=True)
    reserved = fields.List(fields.String())


class Network(NetworkIn):
    size = fields.Integer()
    used = fields.Integer()
    free = fields.Integer()
    holders = fields.List(fields.Dict())


class Networks(Schema):
    networks = fields.List(fields.Nested(Network))


class UserIn(Schema):
    name = fields.String(required=True, metadata={"example": "alice"})
    role = fields.String(metadata={"enum": ["admin", "user"]})


class User(Schema):
    name = fields.String()
    role = fields.String()
    token = fields.String(metadata={"description": "shown once, at creation"})


class Users(Schema):
    users = fields.List(fields.Nested(User))


class Health(Schema):
    status = fields.String()
    web = fields.String()
    database = fields.String()
    broker = fields.String()
