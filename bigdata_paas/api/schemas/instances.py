"""Schemas of instances: what GET shows, lists and their queries, events, streams, logs,
plans and resizes."""

from __future__ import annotations

from marshmallow import (
    Schema,
    fields,
    validate,
)

from bigdata_paas import names, states
from bigdata_paas.api.schemas.base import (
    PageQuery,
    QueryInteger,
    Strict,
    fast_dump,
    name_field,
)

STATUS = validate.OneOf(states.STATUSES, error="must be one of {choices}")


class NodeRuntime(Schema):
    state = fields.String(
        metadata={
            "enum": ["starting", "running", "failed", "stopping", "stopped", "missing"],
            "description": "missing: its agent no longer finds it running",
        }
    )
    host = fields.String()
    at = fields.String(metadata={"description": "when the state was recorded"})
    driver = fields.String(metadata={"enum": ["podman", "process"]})
    runtime_id = fields.String(metadata={"description": "container id, or process id"})
    name = fields.String(metadata={"description": "container (or process record) name"})
    addresses = fields.Dict(keys=fields.String(), values=fields.String())
    error = fields.String(metadata={"description": "when failed: the runtime's own words"})


class NodeOut(Schema):
    name = fields.String()
    cpu = fields.Integer()
    mem = fields.Integer(metadata={"description": "MB"})
    host = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    disks = fields.List(fields.Dict())
    networks = fields.Dict()
    services = fields.List(fields.String())
    check_ports = fields.List(
        fields.Integer(), metadata={"description": "ports that must answer before running"}
    )
    runtime = fields.Nested(
        NodeRuntime,
        allow_none=True,
        metadata={"description": "how its host's agent runs it (null: no agent runs it)"},
    )


class InstanceError(Schema):
    step = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


class InstanceOut(Schema):
    id = fields.String()
    name = fields.String()
    service = fields.String()
    version = fields.String()
    user = fields.String(allow_none=True)
    status = fields.String(metadata={"enum": list(states.STATUSES)})
    options = fields.Dict()
    merged_options = fields.Dict(allow_none=True)
    nodes = fields.List(fields.Nested(NodeOut))
    services = fields.Dict()
    error = fields.Nested(InstanceError, metadata={"description": "when failed"})
    waiting_for = fields.String(metadata={"description": "when queued: why it waits"})
    resize = fields.Nested(
        "ResizeUnderway",
        metadata={"description": "when updating: the resize under way (options: the new ones)"},
    )
    created_at = fields.String()
    updated_at = fields.String()


class ResizeUnderway(Schema):
    action = fields.String(metadata={"enum": ["scale-out", "decommission"]})
    added = fields.List(fields.String())
    removed = fields.List(fields.String())
    options = fields.Dict()


#: ``InstanceOut().dump`` for GET /instances/{id}, the read a following client repeats
dump_instance = fast_dump(InstanceOut())


class InstanceSummary(InstanceOut):
    """An instance in a listing: without nodes, services and merged options."""

    class Meta:
        exclude = ("merged_options", "nodes", "services")


class InstanceQuery(PageQuery):
    service = name_field(names.SERVICE_NAME)
    version = name_field(names.VERSION)
    status = fields.String(validate=STATUS)
    user = name_field(names.USER_NAME, metadata={"description": "owner (admins only)"})


class InstancePage(Schema):
    items = fields.List(fields.Nested(InstanceSummary))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer(
        allow_none=True,
        metadata={"description": "how many match, counted up to 10,000; null beyond"},
    )
    has_more = fields.Boolean(metadata={"description": "whether a next page has items"})


class EventOut(Schema):
    id = fields.Integer(
        metadata={"description": "increasing; the id of the event in the streams too"}
    )
    instance_id = fields.String()
    at = fields.String()
    step = fields.String()
    status = fields.String(metadata={"enum": list(states.STATUSES)})
    message = fields.String()


class EventsOut(Schema):
    events = fields.List(fields.Nested(EventOut))
    last = fields.Integer(metadata={"description": "pass as ?after= for the next events"})


EVENT_ID = validate.Range(0, 2**63 - 1, error="must be an event id (an integer >= 0)")


WAIT_WORDS = "must be a number of seconds from 0 to 60"


class EventQuery(Schema):
    after = QueryInteger(
        validate=EVENT_ID,
        metadata={"description": "only events after this id (what `last` said)"},
    )
    wait = fields.Float(
        load_default=0.0,
        allow_nan=False,
        validate=validate.Range(0, 60, error=WAIT_WORDS),
        error_messages={"invalid": WAIT_WORDS, "special": WAIT_WORDS, "too_large": WAIT_WORDS},
        metadata={
            "description": "long-poll: with `after`, answer as soon as a newer event exists, "
            "or empty after this many seconds (at most 60)"
        },
    )


class StreamQuery(Schema):
    after = QueryInteger(
        validate=EVENT_ID,
        metadata={
            "description": "resume after this id (what Last-Event-ID says, for clients that "
            "cannot set headers); Last-Event-ID wins"
        },
    )


class InstanceStreamQuery(StreamQuery):
    follow = fields.Boolean(
        load_default=False,
        metadata={"description": "keep following after running (until failed or destroyed)"},
    )


class StreamHeaders(Schema):
    last_event_id = QueryInteger(
        data_key="Last-Event-ID",
        validate=EVENT_ID,
        metadata={"description": "the id of the last event received: resume after it"},
    )


class OptionsSchemaOut(Schema):
    """The options as a JSON Schema (draft 2020-12), derived from the options document."""

    schema = fields.String(attribute="$schema", data_key="$schema")
    title = fields.String()
    type = fields.String()
    properties = fields.Dict(
        keys=fields.String(),
        metadata={"description": "per option: type, default, description, group, limits"},
    )
    additional = fields.Boolean(attribute="additionalProperties", data_key="additionalProperties")
    groups = fields.Dict(
        attribute="x-groups",
        data_key="x-groups",
        keys=fields.String(),
        metadata={"description": "required, optional, advanced: the option names of each"},
    )


class LogQuery(Schema):
    after = QueryInteger(
        validate=validate.Range(0, 2**63 - 1, error="must be a log line id"),
        metadata={"description": "only lines after this id (follow with the last one)"},
    )


class LogLineOut(Schema):
    id = fields.Integer()
    at = fields.String()
    command = fields.String()
    stream = fields.String()
    line = fields.String()


class LogsOut(Schema):
    lines = fields.List(fields.Nested(LogLineOut))
    last = fields.Integer(metadata={"description": "pass as ?after= to follow new lines"})


class PlacementOut(Schema):
    node = fields.String()
    host = fields.String()
    disks = fields.Dict(keys=fields.String(), values=fields.String())
    addresses = fields.Dict(keys=fields.String(), values=fields.String())


class ShortageOut(Schema):
    node = fields.String()
    dimension = fields.String()
    needed = fields.Raw(metadata={"description": "an amount, or what is missing"})
    available = fields.Raw()
    message = fields.String()


class QuotaExcess(Schema):
    resource = fields.String(metadata={"enum": ["instances", "nodes", "cpu", "mem", "disks"]})
    requested = fields.Integer(metadata={"description": "what the launch or resize adds"})
    used = fields.Integer(metadata={"description": "what the user's live instances hold"})
    limit = fields.Integer()


class QuotaCheck(Schema):
    allowed = fields.Boolean()
    exceeded = fields.List(fields.Nested(QuotaExcess))


class PlanOut(Schema):
    service = fields.String()
    version = fields.String()
    strategy = fields.String(metadata={"enum": ["binpack", "spread"]})
    fits = fields.Boolean()
    reason = fields.String()
    nodes = fields.Integer()
    cpu = fields.Integer()
    mem = fields.Integer()
    placement = fields.List(fields.Nested(PlacementOut))
    shortages = fields.List(fields.Nested(ShortageOut))
    quota = fields.Nested(QuotaCheck, metadata={"description": "the launch's quota check"})


class ResizeIn(Strict):
    options = fields.Dict(
        required=True,
        metadata={
            "description": "option values merged over the instance's options; the template "
            "renders again and the nodes that appear join, those that disappear leave",
            "example": {"slaves.number": 5},
        },
    )
    remove = fields.List(
        fields.String(),
        validate=validate.Length(max=1000),
        load_default=list,
        metadata={
            "description": "the nodes that leave, instead of the highest-numbered of their "
            "group (as many as the new options remove)",
            "example": ["slave1"],
        },
    )


class ResizeQuery(Strict):
    dry_run = fields.Boolean(
        load_default=False,
        metadata={"description": "say what would change and where new nodes would go"},
    )


class ResizeAdds(Schema):
    nodes = fields.Integer()
    cpu = fields.Integer()
    mem = fields.Integer(metadata={"description": "MB"})
    disks = fields.Integer()


class ResizePlanOut(Schema):
    id = fields.String()
    action = fields.String(metadata={"enum": ["scale-out", "decommission"]})
    added = fields.List(fields.String())
    removed = fields.List(fields.String())
    adds = fields.Nested(
        ResizeAdds, metadata={"description": "what the resize adds (negative: gives back)"}
    )
    fits = fields.Boolean()
    reason = fields.String()
    placement = fields.List(fields.Nested(PlacementOut))
    shortages = fields.List(fields.Nested(ShortageOut))
    quota = fields.Nested(QuotaCheck, metadata={"description": "the owner's quota checked"})
