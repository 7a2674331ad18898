"""Instances: list, inspect, follow, resize, destroy."""

from __future__ import annotations

from flask import current_app, g, jsonify

from bigdata_paas.api import schemas, streams
from bigdata_paas.api.answers import Answers
from bigdata_paas.api.common import Blueprint, caller, errors, runtime
from bigdata_paas.operations import feeds
from bigdata_paas.operations import instances as ops
from bigdata_paas.operations import resize as resize_ops

blp = Blueprint("instances", __name__, description="Follow and destroy launched instances")

#: the last answers of GET /instances/{id}, each given again while the instance, its owner
#: and its nodes are as they were (PostgreSQL; the token check reads their version)
ANSWERS = Answers()


@blp.route("/instances", methods=["GET"])
@blp.doc(**errors(400, 401))
@blp.arguments(schemas.InstanceQuery, location="query")
@blp.response(200, schemas.InstancePage, description="a page of instances")
def list_instances(query: dict):
    """List your instances (admins: everyone's), newest first."""
    owner = query.pop("user", None)
    return ops.list_instances(runtime(), caller(), owner=owner, **query)


@blp.route("/instances/<instance_id>", methods=["GET"])
@blp.doc(**errors(401, 404))
@blp.response(200, schemas.InstanceOut, description="the instance")
def instance_detail(instance_id: str):
    """Show an instance: status, options, nodes with hosts, error."""
    # A client following its instance asks again and again. On PostgreSQL its token check
    # also read the version of the instance it may see (g.ridden, api/auth.py; None: not
    # visible, or SQLite): the answer made from that version is sent again as it was.
    seen = g.get("ridden")
    answer = ANSWERS.get(instance_id, seen) if seen is not None else None
    if answer is not None:
        return current_app.response_class(answer, 200, mimetype="application/json")
    # InstanceOut's answer, dumped by its fast twin (flask-smorest sends a Response as it is)
    found, version = ops.describe_instance_versioned(runtime(), caller(), instance_id)
    response = jsonify(schemas.dump_instance(found))
    if version is not None:
        ANSWERS.put(instance_id, version, response.get_data())
    return response


@blp.route("/instances/<instance_id>", methods=["DELETE"])
@blp.doc(**errors(401, 404, 409, 503))
@blp.response(202, schemas.InstanceOut, description="destroying")
def destroy(instance_id: str):
    """Destroy an instance: orquestrator stop, then every allocation released."""
    return ops.destroy_instance(runtime(), caller(), instance_id)


@blp.route("/instances/<instance_id>", methods=["PATCH"])
@blp.doc(**errors(400, 401, 404, 409, 415, 422, 503))
@blp.arguments(schemas.ResizeQuery, location="query")
@blp.arguments(schemas.ResizeIn, example={"options": {"slaves.number": 5}})
@blp.alt_response(
    200,
    schema=schemas.ResizePlanOut,
    description="dry run: what would change, where new nodes would go; nothing changed",
    success=True,
)
@blp.response(202, schemas.InstanceOut, description="updating: the resize runs")
def resize(query: dict, body: dict, instance_id: str):
    """Resize a running instance with new options: nodes join or leave."""
    answer = resize_ops.resize_instance(
        runtime(),
        caller(),
        instance_id,
        body["options"],
        body["remove"],
        dry_run=query["dry_run"],
    )
    if query["dry_run"]:
        return jsonify(schemas.ResizePlanOut().dump(answer))
    return answer


@blp.route("/instances/<instance_id>/retry", methods=["POST"])
@blp.doc(**errors(401, 403, 404, 409, 503))
@blp.response(202, schemas.InstanceOut, description="running again from the failed step")
def retry(instance_id: str):
    """Run a failed instance again from the step that failed."""
    return ops.retry_instance(runtime(), caller(), instance_id)


@blp.route("/instances/<instance_id>/events", methods=["GET"])
@blp.doc(**errors(400, 401, 404, 503))
@blp.arguments(schemas.EventQuery, location="query")
@blp.response(200, schemas.EventsOut, description="every status change, oldest first")
def events(query: dict, instance_id: str):
    """The instance's timeline; with ?after= and ?wait=, a long-poll for the next events."""
    ops.check_visible(runtime(), caller(), instance_id)  # someone else's is a 404
    after = query.get("after")
    found = feeds.instance_events(
        streams.hub(), instance_id, after=after, wait=query["wait"], max_age=streams.pace().max_age
    )
    return {"events": found, "last": found[-1]["id"] if found else (after or 0)}


@blp.route("/instances/<instance_id>/logs", methods=["GET"])
@blp.doc(**errors(400, 401, 404))
@blp.arguments(schemas.LogQuery, location="query")
@blp.response(200, schemas.LogsOut, description="orquestrator output")
def logs(query: dict, instance_id: str):
    """The orquestrator's output, line by line."""
    return ops.logs(runtime(), caller(), instance_id, query.get("after"))
