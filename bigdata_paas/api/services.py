"""The service catalog, and launching (and planning) instances of a service."""

from __future__ import annotations

from flask import g, jsonify, request, url_for

from bigdata_paas.api import schemas
from bigdata_paas.api.auth import admin_required
from bigdata_paas.api.common import (
    LOCATION,
    Blueprint,
    caller,
    doc_body,
    errors,
    json_body,
    read_body,
    runtime,
    text_answer,
)
from bigdata_paas.errors import Forbidden
from bigdata_paas.operations import instances as instance_ops
from bigdata_paas.operations import services as ops

blp = Blueprint("services", __name__, description="Register services and launch instances")


@blp.route("/services", methods=["GET"])
@blp.doc(**errors(401))
@blp.response(200, schemas.CatalogOut, description="every service with its versions")
def list_services():
    """List the catalog."""
    return {"services": ops.catalog(runtime())}


@blp.route("/services", methods=["POST"])
@blp.doc(**errors(400, 401, 403, 409, 415))
@admin_required
@blp.arguments(schemas.ServiceIn)
@blp.response(201, schemas.ServiceOut, description="registered", headers=LOCATION)
def register_service(service: dict):
    """Register a service name and version."""
    registered = ops.register_service(runtime(), **service, actor=caller().name)
    location = url_for(
        "services.service_detail", name=registered["name"], version=registered["version"]
    )
    return registered, {"Location": location}


@blp.route("/services/<name>", methods=["GET"])
@blp.doc(**errors(401, 404))
@blp.response(200, schemas.VersionsOut, description="the versions")
def service_versions(name: str):
    """List the versions of one service."""
    return ops.versions(runtime(), name)


@blp.route("/services/<name>/<version>", methods=["GET"])
@blp.doc(**errors(401, 404))
@blp.response(200, schemas.ServiceOut, description="which parts are set")
def service_detail(name: str, version: str):
    """Describe one service version."""
    return ops.describe_service(runtime(), name, version)


@blp.route("/services/<name>/<version>", methods=["DELETE"])
@blp.doc(**errors(401, 403, 404, 409))
@admin_required
@blp.response(204, description="deleted")
def delete_service(name: str, version: str):
    """Delete a service version that no live instance uses."""
    ops.delete_service(runtime(), name, version, actor=caller().name)


REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when an earlier launch with this Idempotency-Key made the instance",
        "required": False,
        "schema": {"type": "string", "enum": ["true"]},
    }
}


@blp.route("/services/<name>/<version>", methods=["POST"])
@blp.doc(**errors(400, 401, 403, 404, 409, 415, 422, 503))
@blp.arguments(schemas.LaunchHeaders, location="headers")
@blp.arguments(
    schemas.OptionValues,
    required=False,
    description="option values; {} (or no body) for the defaults",
    example={"slaves.number": 3},
)
@blp.response(
    202,
    schemas.InstanceOut,
    description="accepted: the pipeline runs (or an earlier launch's replay)",
    headers={**LOCATION, **REPLAYED},
)
def launch(headers: dict, values: dict, name: str, version: str):
    """Launch an instance of the service with the given options."""
    launched = instance_ops.launch_instance(
        runtime(),
        caller(),
        name,
        version,
        values,
        idempotency_key=headers.get("idempotency_key"),
        ridden=g.get("ridden"),  # the service and the caller's limits (api/auth.py: RIDERS)
    )
    answer = {"Location": url_for("instances.instance_detail", instance_id=launched.instance["id"])}
    if launched.replayed:
        answer["Idempotent-Replayed"] = "true"
    # InstanceOut's answer, dumped by its fast twin as GET /instances/{id} is (flask-smorest
    # sends a Response as it is, with this status and these headers)
    return jsonify(schemas.dump_instance(launched.instance)), 202, answer


@blp.route("/services/<name>/<version>/plan", methods=["POST"])
@blp.doc(**errors(400, 401, 404, 409, 415, 422))
@blp.arguments(
    schemas.OptionValues, required=False, description="option values; {} for the defaults"
)
@blp.response(200, schemas.PlanOut, description="what would run where, or why not")
def plan(values: dict, name: str, version: str):
    """Render and place without allocating anything."""
    return instance_ops.plan(runtime(), caller(), name, version, values)


@blp.route("/services/<name>/<version>/template", methods=["GET"])
@blp.doc(**errors(401, 404))
@blp.alt_response(
    200,
    schema={"type": "string"},
    content_type="application/yaml",
    description="the raw template (application/yaml when it renders YAML)",
    success=True,
)
@blp.response(200, {"type": "string"}, content_type="text/plain", description="the raw template")
def get_template(name: str, version: str):
    """Read the raw template."""
    text, fmt = ops.read_template(runtime(), name, version)
    mimetype = "application/yaml" if fmt == "yaml" else "text/plain"
    return text_answer(text, f"{mimetype}; charset=utf-8")


@blp.route("/services/<name>/<version>/template", methods=["PUT"])
@blp.doc(
    **doc_body(
        {"type": "string"},
        "Jinja2 text; the body is taken raw whatever the "
        "Content-Type (YAML output when sent as application/yaml)",
        "text/plain",
    ),
    **errors(400, 401, 403, 404, 413, 422),
)
@admin_required
@blp.response(200, schemas.ServiceOut, description="stored")
def put_template(name: str, version: str):
    """Store the template after a sandboxed test render."""
    return ops.set_template(
        runtime(), name, version, read_body(cache=False), request.mimetype, caller().name
    )


@blp.route("/services/<name>/<version>/options", methods=["GET"])
@blp.doc(**errors(401, 404))
@blp.response(200, schemas.OptionsDocument, description="the options document")
def get_options(name: str, version: str):
    """Read the options document."""
    return ops.read_options(runtime(), name, version)


@blp.route("/services/<name>/<version>/options/schema", methods=["GET"])
@blp.doc(**errors(401, 404))
@blp.response(200, schemas.OptionsSchemaOut, description="the options as a JSON Schema")
def get_options_schema(name: str, version: str):
    """Read the options as a JSON Schema: each option's type, default, group and limits."""
    return ops.options_schema(runtime(), name, version)


@blp.route("/services/<name>/<version>/options", methods=["PUT"])
@blp.doc(
    **doc_body(
        schemas.OptionsDocument,
        "JSON; a body sent as application/x-www-form-urlencoded (what `curl --data-binary` "
        "sends without -H) or with no Content-Type is read as JSON too",
    ),
    **errors(400, 401, 403, 404, 415, 422),
)
@admin_required
@blp.response(
    200, schemas.OptionsStored, description="stored; `warnings` lists what the document left out"
)
def put_options(name: str, version: str):
    """Store a validated options document."""
    body = json_body(also=ops.OPTIONS_UPLOAD_TYPES)
    return ops.set_options(runtime(), name, version, body, caller().name)


@blp.route("/services/<name>/<version>/orquestrator", methods=["GET"])
@blp.route("/services/<name>/<version>/orchestrator", methods=["GET"], endpoint="get_orchestrator")
@blp.doc(**errors(401, 403, 404))
@blp.response(200, {"type": "string"}, content_type="text/plain", description="the script")
def get_orquestrator(name: str, version: str):
    """Read the orquestrator script (admins only)."""
    if not caller().is_admin:
        raise Forbidden("only admins can read orquestrators")
    return text_answer(ops.read_orquestrator(runtime(), name, version), "text/plain; charset=utf-8")


@blp.route("/services/<name>/<version>/orquestrator", methods=["PUT"])
@blp.route("/services/<name>/<version>/orchestrator", methods=["PUT"], endpoint="put_orchestrator")
@blp.doc(
    **doc_body({"type": "string"}, "the script, raw, whatever the Content-Type", "text/plain"),
    **errors(400, 401, 403, 404, 413, 422),
)
@admin_required
@blp.arguments(schemas.ScriptQuery, location="query")
@blp.response(200, schemas.ServiceOut, description="stored")
def put_orquestrator(query: dict, name: str, version: str):
    """Store the orquestrator script."""
    return ops.set_orquestrator(
        runtime(),
        name,
        version,
        read_body(cache=False),
        query.get("timeout"),
        actor=caller().name,
    )
