"""The console's pages for every user: the catalog, the launch form, instances and their
detail, followed live. Each calls the use case the REST API calls, as the signed-in user."""

from __future__ import annotations

import re
import uuid

from flask import abort, g, redirect, render_template, request, url_for
from marshmallow import ValidationError as SchemaError
from werkzeug.exceptions import HTTPException

from bigdata_paas import states
from bigdata_paas.api import schemas, streams
from bigdata_paas.api.common import runtime
from bigdata_paas.console import bp, forms
from bigdata_paas.errors import NodeOptionsError, NotFound, PaasError, ValidationError
from bigdata_paas.operations import feeds
from bigdata_paas.operations import instances as instance_ops
from bigdata_paas.operations import services as service_ops

#: a launch key the form made (uuid4 hex); anything else is ignored and a new one made
LAUNCH_KEY = re.compile(r"^[0-9a-f]{32}$")
#: lines of orquestrator output an instance page shows before it follows new ones
LOG_TAIL = 200


@bp.errorhandler(PaasError)
def _domain_error(exc: PaasError):
    return render_template("console/error.html", status=exc.status, message=exc.message), (
        exc.status
    )


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    status = exc.code or 500
    return render_template("console/error.html", status=status, message=exc.description), status


@bp.route("/")
def home():
    return redirect(url_for("console.instances"))


# ----------------------------------------------------------------------------- catalog


@bp.route("/services")
def catalog():
    """Every service and version, its description, and whether it can launch."""
    rt = runtime()
    services = [service_ops.versions(rt, entry["name"]) for entry in service_ops.catalog(rt)]
    return render_template("console/catalog.html", services=services)


def _launch_page(name: str, version: str, fields, *, status: int = 200, **extra):
    service = service_ops.describe_service(runtime(), name, version)
    key = request.form.get("launch_key", "")
    return (
        render_template(
            "console/launch.html",
            service=service,
            fields=fields,
            launch_key=key if LAUNCH_KEY.match(key) else uuid.uuid4().hex,
            **extra,
        ),
        status,
    )


@bp.route("/services/<name>/<version>")
def launch_form(name: str, version: str):
    """The launch form: every option with its default, grouped, with its help."""
    schema = service_ops.options_schema(runtime(), name, version)
    return _launch_page(name, version, forms.option_fields(schema))


@bp.route("/services/<name>/<version>", methods=["POST"])
def launch(name: str, version: str):
    """Plan (where the nodes would go) or launch, with the options of the form."""
    rt = runtime()
    fields = forms.option_fields(service_ops.options_schema(rt, name, version))
    values, readable = forms.read_form(fields, request.form)
    if not readable:
        return _launch_page(name, version, fields, status=400, general=[])
    try:
        if request.form.get("action") == "plan":
            found = instance_ops.plan(rt, g.user, name, version, values)
            return _launch_page(name, version, fields, plan=found)
        key = request.form.get("launch_key", "")
        key = key if LAUNCH_KEY.match(key) else ""
        launched = instance_ops.launch_instance(
            rt, g.user, name, version, values, idempotency_key=key or None
        )
    except (ValidationError, NodeOptionsError) as exc:
        general = forms.place_problems(fields, exc.problems)
        return _launch_page(name, version, fields, status=exc.status, general=general)
    except PaasError as exc:
        if isinstance(exc, NotFound):
            raise
        return _launch_page(name, version, fields, status=exc.status, general=[exc.message])
    return redirect(url_for("console.instance", instance_id=launched.instance["id"]), 303)


# ----------------------------------------------------------------------------- instances


@bp.route("/instances")
def instances():
    """The instances the user may see, filtered by the query string (kept in the URL)."""
    args = {k: v for k, v in request.args.items() if v != ""}
    try:
        query = schemas.InstanceQuery().load(args)
    except SchemaError as exc:
        problems = [f"{name}: {'; '.join(map(str, msgs))}" for name, msgs in exc.messages.items()]
        return render_template(
            "console/instances.html", page=None, filters=args, problems=problems
        ), 400
    owner = query.pop("user", None)
    if owner is not None and not g.user.is_admin:
        abort(400, "only admins filter by user")
    page = instance_ops.list_instances(runtime(), g.user, owner=owner, **query)
    return render_template(
        "console/instances.html",
        page=page,
        filters=args,
        problems=[],
        statuses=states.STATUSES,
    )


def _timeline(instance_id: str) -> list[dict]:
    return feeds.instance_events(streams.hub(), instance_id, after=None, wait=0, max_age=1)


@bp.route("/instances/<instance_id>")
def instance(instance_id: str):
    """One instance: where it is and why, its nodes, its events and logs, followed live."""
    rt = runtime()
    found = instance_ops.describe_instance(rt, g.user, instance_id)
    events = _timeline(instance_id)
    logs = instance_ops.logs(rt, g.user, instance_id)["lines"][-LOG_TAIL:]
    return render_template(
        "console/instance.html",
        instance=found,
        events=events,
        latest=events[-1] if events else None,
        logs=logs,
        last_event=events[-1]["id"] if events else 0,
        last_log=logs[-1]["id"] if logs else 0,
        statuses=states.STATUSES,
        destroyable=found["status"] in states.DESTROYABLE,
    )


@bp.route("/instances/<instance_id>/live")
def instance_live(instance_id: str):
    """The parts of the instance page an event changes (its header and nodes), as HTML."""
    rt = runtime()
    found = instance_ops.describe_instance(rt, g.user, instance_id)
    events = _timeline(instance_id)
    return render_template(
        "console/_live.html",
        instance=found,
        latest=events[-1] if events else None,
        destroyable=found["status"] in states.DESTROYABLE,
    )


def _resume() -> int | None:
    """Last-Event-ID (an EventSource reconnecting) or ?after=, as the API's streams take."""
    sent = request.headers.get("Last-Event-ID") or request.args.get("after")
    if sent is None:
        return None
    if not sent.isdigit() or len(sent) > 18:
        abort(400, "after: must be an event id")
    return int(sent)


def _instance_stream(instance_id: str, *, logs: bool):
    instance_ops.check_visible(runtime(), g.user, instance_id)  # someone else's is a 404
    stream = feeds.open_instance_stream(
        streams.hub(),
        instance_id,
        logs=logs,
        after=_resume(),
        follow=True,
        pace=streams.pace(),
    )
    return ("", 204) if stream is None else streams.event_stream(stream)


@bp.route("/instances/<instance_id>/events/stream")
def instance_events_stream(instance_id: str):
    """The instance's events as Server-Sent Events, for its page (with the session cookie)."""
    return _instance_stream(instance_id, logs=False)


@bp.route("/instances/<instance_id>/logs/stream")
def instance_logs_stream(instance_id: str):
    """The instance's orquestrator output as Server-Sent Events, for its page."""
    return _instance_stream(instance_id, logs=True)


@bp.route("/events/stream")
def all_events_stream():
    """Every visible instance's events, for the list's live statuses."""
    stream = feeds.open_global_stream(
        streams.hub(),
        user_id=None if g.user.is_admin else g.user.id,
        after=_resume(),
        pace=streams.pace(),
    )
    return streams.event_stream(stream)


@bp.route("/instances/<instance_id>/destroy", methods=["POST"])
def destroy(instance_id: str):
    instance_ops.destroy_instance(runtime(), g.user, instance_id)
    return redirect(url_for("console.instance", instance_id=instance_id), 303)


@bp.route("/instances/<instance_id>/retry", methods=["POST"])
def retry(instance_id: str):
    instance_ops.retry_instance(runtime(), g.user, instance_id)
    return redirect(url_for("console.instance", instance_id=instance_id), 303)
