"""One marshmallow schema per shape of the API: what a request may carry, what an answer holds.

Requests are checked with these schemas (``@blp.arguments``, and the CLI's inventory files
through ``load``) and answers are written with them (``@blp.response``), so the OpenAPI
document describes exactly what is checked and what is sent. Every problem of a request is
reported at once, each naming its field (``problems``). Rules that need the database (a name
already taken, an unknown network) stay in the operations; option values and options
documents are checked by ``rendering.options``, which these schemas only describe.
"""

from __future__ import annotations

import ipaddress
from typing import Any, AnyStr

from flask import current_app
from marshmallow import (
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

from bigdata_paas import errors, names, states
from bigdata_paas.models import HOST_STATES, ROLES
from bigdata_paas.names import NameRule

#: the most problems one answer lists; the rest are counted
MAX_PROBLEMS = 200
#: the longest field path an answer names (a 10 KB key is named by its start)
MAX_FIELD = 200


class Matches(validate.Regexp):
    """The whole value is a name of ``rule``'s kind (bigdata_paas/names.py): checked with the
    rule, documented as the rule's ``pattern``, refused with the rule's words."""

    def __init__(self, rule: NameRule) -> None:
        super().__init__(rule.pattern)
        self.rule = rule

    def __call__(self, value: AnyStr) -> AnyStr:
        if not self.rule.matches(value):
            raise ValidationError(self.rule.message)
        return value


def _name(rule: NameRule, **kwargs) -> fields.String:
    return fields.String(validate=Matches(rule), **kwargs)


class QueryInteger(fields.Integer):
    """A whole number; in a query string ASCII digits only (``int()`` also reads fullwidth digits,
    ``"1_000"`` and ``" 1"``), in a JSON body an integer (not ``2.0``, not ``"2"``)."""

    default_error_messages = {"invalid": "must be a whole number"}

    def __init__(self, **kwargs) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, str):
            if not (value.isascii() and value.isdigit() and len(value) <= 18):
                raise self.make_error("invalid", input=value)
            value = int(value)
        return super()._validated(value)


#: the largest count a column holds (32-bit)
MAX_COUNT = 2**31 - 1


def _count(low: int, high: int = MAX_COUNT, **kwargs) -> fields.Integer:
    """A JSON integer from ``low`` to ``high``."""
    error = f"must be an integer >= {low}" if high == MAX_COUNT else f"must be {low}..{high}"
    return fields.Integer(strict=True, validate=validate.Range(low, high, error=error), **kwargs)


class Strict(Schema):
    """A request shape: fields it does not name are refused, each named."""

    error_messages = {"type": "must be a JSON object", "unknown": "unknown field"}

    class Meta:
        unknown = RAISE


# ----------------------------------------------------------------------------- problems


def problems(messages: Any, where: str = "") -> list[dict[str, str]]:
    """marshmallow's nested error messages as the envelope's flat list of problems.

    ``{"disks": {0: {"name": ["..."]}}}`` is ``disks[0].name``; errors of a whole
    document (``_schema``) name the field it sits in, and ``""`` for the body itself.
    """
    found: list[dict[str, str]] = []
    stack = [(where, messages)]
    while stack:
        path, item = stack.pop(0)
        if isinstance(item, dict):
            # a Dict field's entry: {"key": [...], "value": [...]} belongs to the entry
            if item and set(item) <= {"key", "value"} and path:
                for part in ("key", "value"):
                    if part in item:
                        stack.append((path, item[part]))
                continue
            for key, value in item.items():
                if key == "_schema":  # the whole document (field ""), or the field it sits in
                    stack.append((path, value))
                elif isinstance(key, int):
                    stack.append((f"{path}[{key}]", value))
                else:
                    stack.append((f"{path}.{key}" if path else str(key), value))
        elif isinstance(item, list):
            for message in item:
                if isinstance(message, (dict, list)):
                    stack.append((path, message))
                else:
                    found.append({"field": path[:MAX_FIELD], "message": str(message)})
        else:
            found.append({"field": path[:MAX_FIELD], "message": str(item)})
    if len(found) > MAX_PROBLEMS:
        extra = len(found) - MAX_PROBLEMS
        found = [*found[:MAX_PROBLEMS], {"field": "", "message": f"and {extra} more problems"}]
    return found


def invalid(messages: Any) -> errors.ValidationError:
    """The domain's 400 for marshmallow's error ``messages``: every problem, each with its
    field."""
    return errors.ValidationError(problems(messages) or [{"field": "", "message": "invalid"}])


def load(schema: type[Schema], data: Any) -> Any:
    """``data`` checked and completed with defaults by ``schema``; a domain ValidationError
    listing every problem otherwise (for the CLI, which reads API bodies from files)."""
    try:
        return schema().load(data)
    except ValidationError as error:
        raise invalid(error.messages) from None


# ----------------------------------------------------------------------------- errors


class ErrorBody(Schema):
    code = fields.String(
        required=True, metadata={"description": "stable machine code, e.g. invalid_input"}
    )
    message = fields.String(
        required=True, metadata={"description": "what is wrong, naming the field"}
    )
    details = fields.Dict(
        metadata={"description": "for invalid_input: {problems: [{field, message}, ...]}"}
    )


class ErrorEnvelope(Schema):
    error = fields.Nested(ErrorBody, required=True)
    status = fields.Integer(required=True, metadata={"description": "the HTTP status again"})


# ----------------------------------------------------------------------------- services


class ServiceIn(Strict):
    name = _name(names.SERVICE_NAME, required=True, metadata={"example": "gluster"})
    version = _name(names.VERSION, required=True, metadata={"example": "3.7.11"})
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


# ----------------------------------------------------------------------------- instances

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


class InstanceSummary(InstanceOut):
    """An instance in a listing: without nodes, services and merged options."""

    class Meta:
        exclude = ("merged_options", "nodes", "services")


class InstanceQuery(Schema):
    page = QueryInteger(
        load_default=1,
        validate=validate.Range(1, 10**6, error="must be an integer 1..{max}"),
        metadata={"description": "from 1"},
    )
    per_page = QueryInteger(
        validate=validate.Range(1, 500, error="must be an integer 1..{max}"),
        metadata={"description": "items per page, 1..500 (default PAAS_PAGE_SIZE)"},
    )
    service = _name(names.SERVICE_NAME)
    version = _name(names.VERSION)
    status = fields.String(validate=STATUS)
    user = _name(names.USER_NAME, metadata={"description": "owner (admins only)"})


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


# ----------------------------------------------------------------------------- inventory

HOST_STATE = validate.OneOf(HOST_STATES, error="must be one of {choices}")


class MaxEntries(validate.Validator):
    """At most ``most`` entries in an object (documented as ``maxProperties``)."""

    def __init__(self, most: int) -> None:
        self.most = most

    def __call__(self, value: dict) -> dict:
        if len(value) > self.most:
            raise ValidationError(f"must have at most {self.most} entries")
        return value


def _labels(**kwargs) -> fields.Dict:
    return fields.Dict(
        keys=_name(names.LABEL_NAME),
        values=fields.String(validate=validate.Length(max=255)),
        validate=MaxEntries(64),
        metadata={"maxProperties": 64},
        **kwargs,
    )


class HostDiskIn(Strict):
    name = _name(names.DISK_NAME, required=True)
    type = _name(names.DISK_TYPE, load_default="hdd", metadata={"example": "hdd"})
    size = _count(0, load_default=0, metadata={"description": "GB"})


class HostIn(Strict):
    name = _name(names.HOST_NAME, required=True, metadata={"example": "node01"})
    address = _name(names.HOST_ADDRESS, required=True, metadata={"example": "127.0.0.1"})
    cpu = _count(1, required=True)
    mem = _count(1, required=True, metadata={"description": "MB"})
    disks = fields.List(
        fields.Nested(HostDiskIn), load_default=list, validate=validate.Length(max=256)
    )
    networks = fields.List(_name(names.NETWORK_NAME), load_default=list)
    labels = _labels(load_default=dict)
    state = fields.String(validate=HOST_STATE, load_default="up")

    @validates("disks")
    def _distinct_disks(self, disks: list[dict], **_) -> None:
        seen: set[str] = set()
        for i, disk in enumerate(disks):
            name = disk.get("name") if isinstance(disk, dict) else None
            if name in seen:
                raise ValidationError({i: {"name": ["duplicate disk name"]}})
            if name is not None:
                seen.add(name)


class HostPatch(Strict):
    state = fields.String(validate=HOST_STATE)
    labels = _labels()

    @validates_schema
    def _something(self, data: dict, **_) -> None:
        if not data:
            raise ValidationError("give state and/or labels")


class HostDiskOut(Schema):
    name = fields.String()
    type = fields.String()
    size = fields.Integer()
    free = fields.Boolean(metadata={"description": "no node holds it"})


class Resources(Schema):
    cpu = fields.Integer()
    mem = fields.Integer()
    disks = fields.Integer()


class HostNode(Schema):
    instance = fields.String()
    node = fields.String()
    cpu = fields.Integer()
    mem = fields.Integer()


class AgentOut(Schema):
    driver = fields.String(metadata={"enum": ["podman", "process"]})
    machine = fields.String(metadata={"description": "the machine the agent runs on"})
    pid = fields.String()
    started_at = fields.String()
    last_seen = fields.String(metadata={"description": "its last report (heartbeat)"})


class HostOut(Schema):
    name = fields.String()
    address = fields.String()
    cpu = fields.Integer()
    mem = fields.Integer(metadata={"description": "MB"})
    disks = fields.List(fields.Nested(HostDiskOut))
    networks = fields.List(fields.String())
    labels = fields.Dict(keys=fields.String(), values=fields.String())
    state = fields.String(metadata={"enum": list(HOST_STATES)})
    state_reason = fields.String(
        allow_none=True,
        metadata={"description": "why it is in its state (a drain, a silent agent)"},
    )
    state_since = fields.String(allow_none=True)
    agent = fields.Nested(
        AgentOut, allow_none=True, metadata={"description": "null: no agent ever reported"}
    )
    allocated = fields.Nested(Resources)
    free = fields.Nested(Resources)
    nodes = fields.List(fields.Nested(HostNode), metadata={"description": "on GET of one host"})
    created_at = fields.String()


class HostsOut(Schema):
    hosts = fields.List(fields.Nested(HostOut))


class NetworkIn(Strict):
    name = _name(names.NETWORK_NAME, required=True, metadata={"example": "lan"})
    cidr = fields.String(required=True, metadata={"example": "10.0.0.0/24"})
    gateway = fields.String(allow_none=True, load_default=None)
    bridge = _name(names.INTERFACE_NAME, allow_none=True, load_default=None)
    reserved = fields.List(
        fields.String(),
        load_default=list,
        validate=validate.Length(max=1024),
        metadata={"description": "addresses or ranges a-b in the cidr that are not handed out"},
    )

    @validates("cidr")
    def _a_network(self, value: str, **_) -> None:
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValidationError(f"must be a network like 10.0.0.0/24 ({exc})") from None
        if network.num_addresses < 4:
            raise ValidationError("must be a network like 10.0.0.0/24 (too small)")

    @validates_schema(skip_on_field_errors=False)
    def _inside(self, data: dict, **_) -> None:
        try:
            cidr = ipaddress.ip_network(data["cidr"], strict=True)
        except (KeyError, TypeError, ValueError):
            cidr = None  # reported by _a_network (or as missing)
        found: dict[str, Any] = {}
        gateway = data.get("gateway")
        if gateway is not None:
            try:
                address = ipaddress.ip_address(gateway)
                if cidr is not None and address not in cidr:
                    raise ValueError("outside the network")
            except ValueError as exc:
                found["gateway"] = [f"must be an address in cidr ({exc})"]
        for i, item in enumerate(data.get("reserved") or []):
            problem = _reserved_problem(item, cidr)
            if problem:
                found.setdefault("reserved", {})[i] = [problem]
        if found:
            raise ValidationError(found)

    @post_load
    def _normalized(self, data: dict, **_) -> dict:
        return {**data, "cidr": str(ipaddress.ip_network(data["cidr"], strict=True))}


def _reserved_problem(
    item: str, cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None
) -> str | None:
    """Why ``item`` is not an address or a range ``a-b`` inside ``cidr``; None if it is."""
    first, _, last = item.partition("-")
    try:
        low = ipaddress.ip_address(first.strip())
        high = ipaddress.ip_address((last or first).strip())
        if cidr is not None and (low not in cidr or high not in cidr or int(high) < int(low)):
            raise ValueError("outside the network or reversed")
    except ValueError as exc:
        return f"must be an address or range a-b in the cidr ({exc})"
    return None


class NetworkUser(Schema):
    address = fields.String()
    device = fields.String()
    node = fields.String()
    instance = fields.String()


class NetworkOut(Schema):
    name = fields.String()
    cidr = fields.String()
    gateway = fields.String(allow_none=True)
    bridge = fields.String(allow_none=True)
    reserved = fields.List(fields.String())
    size = fields.Integer(metadata={"description": "addresses that can be handed out"})
    used = fields.Integer()
    free = fields.Integer()
    holders = fields.List(fields.Nested(NetworkUser))


class NetworksOut(Schema):
    networks = fields.List(fields.Nested(NetworkOut))


# ----------------------------------------------------------------------------- users


class UserIn(Strict):
    name = _name(names.USER_NAME, required=True, metadata={"example": "alice"})

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


# ----------------------------------------------------------------------------- health


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
