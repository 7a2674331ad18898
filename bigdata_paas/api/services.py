"""The service catalog."""

from __future__ import annotations

import re

from flask import g, jsonify, request, url_for
from flask_smorest import Blueprint

from bigdata_paas.api import schemas
from bigdata_paas.api.auth import admin_required
from bigdata_paas.api.common import (
    LOCATION,
    doc_body,
    json_body,
    read_body,
    responses,
    runtime,
)
from bigdata_paas.errors import Forbidden, NotFound, ValidationError
from bigdata_paas.operations import instances as instance_ops
from bigdata_paas.operations import services as ops

blp = Blueprint("services", __name__, description="Register services and launch instances")


@blp.route("/services", methods=["GET"])
@blp.doc(**responses((200, schemas.Catalog, "every service with its versions")))
def list_services():
    """List the catalog."""
    with runtime().db.session() as session:
        return jsonify({"services": ops.catalog(session)})


@blp.route("/services", methods=["POST"])
@blp.doc(
    **doc_body(schemas.ServiceIn),
    **responses(
        (201, schemas.Service, "registered"),
        errors=(400, 401, 403, 409, 415),
        headers={201: LOCATION},
    ),
)
@admin_required
def register_service():
    """Register a service name and version."""
    body = json_body()
    with runtime().db.session() as session:
        service = ops.register_service(session, body)
        response = jsonify(service.to_dict())
    response.status_code = 201
    response.headers["Location"] = url_for(
        "services.service_detail", name=service.name, version=service.version
    )
    return response


@blp.route("/services/<name>", methods=["GET"])
@blp.doc(**responses((200, schemas.Versions, "the versions"), errors=(401, 404)))
def service_versions(name: str):
    """List the versions of one service."""
    with runtime().db.session() as session:
        return jsonify(
            {"name": name, "versions": [s.to_dict() for s in ops.versions(session, name)]}
        )


@blp.route("/services/<name>/<version>", methods=["GET"])
@blp.doc(**responses((200, schemas.Service, "which parts are set"), errors=(401, 404)))
def service_detail(name: str, version: str):
    """Describe one service version."""
    with runtime().db.session() as session:
        return jsonify(ops.get_service(session, name, version).to_dict())


@blp.route("/services/<name>/<version>", methods=["DELETE"])
@blp.doc(**responses((204, None, "deleted"), errors=(401, 403, 404, 409)))
@admin_required
def delete_service(name: str, version: str):
    """Delete a service version that no live instance uses."""
    with runtime().db.session() as session:
        ops.delete_service(session, ops.get_service(session, name, version))
    return "", 204


#: what an Idempotency-Key may be: 1..255 visible ASCII characters (a UUID is a good one)
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def idempotency_key() -> str | None:
    """The launch's ``Idempotency-Key`` header, validated; None when it is absent."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationError(
            "must be 1 to 255 visible ASCII characters (no spaces), e.g. a UUID",
            field="Idempotency-Key",
        )
    return key


@blp.route("/services/<name>/<version>", methods=["POST"])
@blp.doc(
    **doc_body(
        {"type": "object", "additionalProperties": True, "example": {"slaves.number": 3}},
        "option values; {} for the defaults",
    ),
    parameters=[
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
            "description": "makes the launch safe to retry: the same key with the same "
            "service, version and options answers the first launch's instance again "
            "(202, same id and Location, header Idempotent-Replayed: true) and starts "
            "nothing; with anything else it is a 409 (idempotency_key_reused). Keys are "
            "per user and live as long as the instance; a launch that answered 503 left "
            "nothing, so its key launches anew.",
            "example": "5f1c2e0a-launch-1",
        }
    ],
    **responses(
        (202, schemas.Instance, "accepted: the pipeline runs (or an earlier launch's replay)"),
        errors=(400, 401, 404, 409, 415, 422, 503),
        headers={
            202: {
                **LOCATION,
                "Idempotent-Replayed": {
                    "description": "`true` when an earlier launch with this Idempotency-Key "
                    "made the instance",
                    "required": False,
                    "schema": {"type": "string", "enum": ["true"]},
                },
            }
        },
    ),
)
def launch(name: str, version: str):
    """Launch an instance of the service with the given options."""
    key = idempotency_key()
    values = json_body(empty={})
    rt = runtime()
    with rt.db.session() as session:
        launched = instance_ops.launch_instance(
            rt, session, g.user, name, version, values, idempotency_key=key
        )
        body = launched.instance.to_dict()
    response = jsonify(body)
    response.status_code = 202
    response.headers["Location"] = url_for("instances.instance_detail", instance_id=body["id"])
    if launched.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@blp.route("/services/<name>/<version>/plan", methods=["POST"])
@blp.doc(
    **doc_body({"type": "object", "additionalProperties": True}),
    **responses(
        (200, schemas.Plan, "what would run where, or why not"),
        errors=(400, 401, 404, 409, 415, 422),
    ),
)
def plan(name: str, version: str):
    """Render and place without allocating anything."""
    values = json_body(empty={})
    rt = runtime()
    with rt.db.session() as session:
        return jsonify(instance_ops.plan(rt, session, g.user, name, version, values))


@blp.route("/services/<name>/<version>/template", methods=["GET"])
@blp.doc(**responses((200, None, "the raw template"), errors=(401, 404)))
def get_template(name: str, version: str):
    """Read the raw template."""
    with runtime().db.session() as session:
        service = ops.get_service(session, name, version)
        if service.template is None:
            raise NotFound(f"service {name}/{version} has no template yet")
        mimetype = "application/yaml" if service.template_format == "yaml" else "text/plain"
        return service.template, 200, {"Content-Type": f"{mimetype}; charset=utf-8"}


@blp.route("/services/<name>/<version>/template", methods=["PUT"])
@blp.doc(
    **doc_body(
        {"type": "string"},
        "Jinja2 text; the body is taken raw whatever the "
        "Content-Type (YAML output when sent as application/yaml)",
        "text/plain",
    ),
    **responses((200, schemas.Service, "stored"), errors=(400, 401, 403, 404, 413, 422)),
)
@admin_required
def put_template(name: str, version: str):
    """Store the template after a sandboxed test render."""
    rt = runtime()
    with rt.db.session() as session:
        service = ops.get_service(session, name, version)
        ops.set_template(
            rt, session, service, read_body(cache=False), request.mimetype, g.user.name
        )
        return jsonify(service.to_dict())


@blp.route("/services/<name>/<version>/options", methods=["GET"])
@blp.doc(**responses((200, schemas.OptionsDocument, "the options document"), errors=(401, 404)))
def get_options(name: str, version: str):
    """Read the options document."""
    with runtime().db.session() as session:
        service = ops.get_service(session, name, version)
        if service.options is None:
            raise NotFound(f"service {name}/{version} has no options yet")
        return jsonify(service.options)


@blp.route("/services/<name>/<version>/options", methods=["PUT"])
@blp.doc(
    **doc_body(
        schemas.OptionsDocument,
        "JSON; a body sent as application/x-www-form-urlencoded (what `curl --data-binary` "
        "sends without -H) or with no Content-Type is read as JSON too",
    ),
    **responses(
        (200, schemas.OptionsStored, "stored; `warnings` lists what the document left out"),
        errors=(400, 401, 403, 404, 415, 422),
    ),
)
@admin_required
def put_options(name: str, version: str):
    """Store a validated options document."""
    body = json_body(also=ops.OPTIONS_UPLOAD_TYPES)
    rt = runtime()
    with rt.db.session() as session:
        service = ops.get_service(session, name, version)
        service, warnings = ops.set_options(rt, session, service, body, g.user.name)
        return jsonify({**service.to_dict(), "warnings": warnings})


@blp.route("/services/<name>/<version>/orquestrator", methods=["GET"])
@blp.route("/services/<name>/<version>/orchestrator", methods=["GET"], endpoint="get_orchestrator")
@blp.doc(**responses((200, None, "the script"), errors=(401, 403, 404)))
def get_orquestrator(name: str, version: str):
    """Read the orquestrator script (admins only)."""
    if not g.user.is_admin:
        raise Forbidden("only admins can read orquestrators")
    with runtime().db.session() as session:
        service = ops.get_service(session, name, version)
        if service.orquestrator is None:
            raise NotFound(f"service {name}/{version} has no orquestrator yet")
        return service.orquestrator, 200, {"Content-Type": "text/plain; charset=utf-8"}


@blp.route("/services/<name>/<version>/orquestrator", methods=["PUT"])
@blp.route("/services/<name>/<version>/orchestrator", methods=["PUT"], endpoint="put_orchestrator")
@blp.doc(
    **doc_body({"type": "string"}, "the script, raw, whatever the Content-Type", "text/plain"),
    parameters=[
        {
            "name": "timeout",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1},
            "description": "seconds a command of this service may run "
            "(default PAAS_ORQUESTRATOR_TIMEOUT)",
        }
    ],
    **responses((200, schemas.Service, "stored"), errors=(400, 401, 403, 404, 413, 422)),
)
@admin_required
def put_orquestrator(name: str, version: str):
    """Store the orquestrator script."""
    with runtime().db.session() as session:
        service = ops.get_service(session, name, version)
        ops.set_orquestrator(
            session,
            service,
            read_body(cache=False),
            request.args.get("timeout"),
            runtime().config.ORQUESTRATOR_MAX_TIMEOUT,
        )
        return jsonify(service.to_dict())
