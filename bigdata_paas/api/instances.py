"""Instances: list, inspect, follow, destroy."""

from __future__ import annotations

from flask import g, jsonify, request
from flask_smorest import Blueprint

from bigdata_paas.api import schemas, streams
from bigdata_paas.api.common import responses, runtime
from bigdata_paas.operations import feeds
from bigdata_paas.operations import instances as ops

blp = Blueprint("instances", __name__, description="Follow and destroy launched instances")


@blp.route("/instances", methods=["GET"])
@blp.doc(
    parameters=[
        {"name": n, "in": "query", "required": False, "schema": {"type": t}, "description": d}
        for n, t, d in (
            ("page", "integer", "page number, from 1"),
            ("per_page", "integer", "items per page, 1..500"),
            ("service", "string", "service name"),
            ("version", "string", "version"),
            ("status", "string", "status"),
            ("user", "string", "owner (admins)"),
        )
    ],
    **responses((200, schemas.InstancePage, "a page of instances")),
)
def list_instances():
    """List your instances (admins: everyone's), newest first."""
    rt = runtime()
    with rt.db.session() as session:
        return jsonify(
            ops.list_instances(session, g.user, request.args.to_dict(), rt.config.PAGE_SIZE)
        )


@blp.route("/instances/<instance_id>", methods=["GET"])
@blp.doc(**responses((200, schemas.Instance, "the instance"), errors=(401, 404)))
def instance_detail(instance_id: str):
    """Show an instance: status, options, nodes with hosts, error."""
    with runtime().db.session() as session:
        return jsonify(ops.get_instance(session, g.user, instance_id).to_dict())


@blp.route("/instances/<instance_id>", methods=["DELETE"])
@blp.doc(**responses((202, schemas.Instance, "destroying"), errors=(401, 404, 409, 503)))
def destroy(instance_id: str):
    """Destroy an instance: orquestrator stop, then every allocation released."""
    rt = runtime()
    with rt.db.session() as session:
        instance = ops.get_instance(session, g.user, instance_id)
        body = ops.destroy_instance(rt, session, instance).to_dict()
    return jsonify(body), 202


@blp.route("/instances/<instance_id>/retry", methods=["POST"])
@blp.doc(
    **responses(
        (202, schemas.Instance, "running again from the failed step"), errors=(401, 404, 409, 503)
    )
)
def retry(instance_id: str):
    """Run a failed instance again from the step that failed."""
    rt = runtime()
    with rt.db.session() as session:
        instance = ops.get_instance(session, g.user, instance_id)
        body = ops.retry_instance(rt, session, instance).to_dict()
    return jsonify(body), 202


@blp.route("/instances/<instance_id>/events", methods=["GET"])
@blp.doc(
    parameters=streams.LONG_POLL_PARAMETERS,
    **responses(
        (200, schemas.Events, "every status change, oldest first"), errors=(400, 401, 404, 503)
    ),
)
def events(instance_id: str):
    """The instance's timeline; with ?after= and ?wait=, a long-poll for the next events."""
    after, wait = streams.cursor_arg(), streams.wait_arg()
    with runtime().db.session() as session:
        ops.get_instance(session, g.user, instance_id)
    found = feeds.instance_events(
        streams.hub(), instance_id, after=after, wait=wait, max_age=streams.pace().max_age
    )
    return jsonify({"events": found, "last": found[-1]["id"] if found else (after or 0)})


@blp.route("/instances/<instance_id>/logs", methods=["GET"])
@blp.doc(
    parameters=[
        {
            "name": "after",
            "in": "query",
            "required": False,
            "schema": {"type": "integer"},
            "description": "only lines after this id (follow with the last one)",
        }
    ],
    **responses((200, schemas.Logs, "orquestrator output"), errors=(400, 401, 404)),
)
def logs(instance_id: str):
    """The orquestrator's output, line by line."""
    with runtime().db.session() as session:
        instance = ops.get_instance(session, g.user, instance_id)
        return jsonify(ops.logs(session, instance, request.args.get("after")))
