"""The service catalog: register, describe, set template/options/orquestrator, delete."""

from __future__ import annotations

import ast
import dataclasses
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from bigdata_paas import states
from bigdata_paas.errors import (
    Conflict,
    NodeOptionsError,
    NotFound,
    ScriptError,
    TemplateError,
    ValidationError,
)
from bigdata_paas.models import Instance, Service
from bigdata_paas.models.service import missing_parts
from bigdata_paas.nodes import spec_problems
from bigdata_paas.operations import audit
from bigdata_paas.rendering import (
    TRIAL_INSTANCE_ID,
    check_options_document,
    check_syntax,
    instance_context,
    merge_options,
    render_spec,
    validate_spec,
)
from bigdata_paas.rendering.options_schema import options_schema as document_schema
from bigdata_paas.runtime import Runtime

YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
#: The types an options document may be sent as besides JSON's own: the original system's
#: registration scripts ran ``curl --data-binary @options.json`` with no ``-H``, which sends
#: it as a form. The body is read as JSON all the same (as it is with no type at all).
OPTIONS_UPLOAD_TYPES = ("application/x-www-form-urlencoded",)


def register_service(
    rt: Runtime, name: str, version: str, description: str = "", *, actor: str
) -> dict:
    """Add ``name``/``version`` to the catalog; 409 if it exists.

    The values are checked by the caller (the API's ``ServiceIn``).
    """
    with rt.db.session() as session:
        if find_service(session, name, version) is not None:
            raise Conflict(f"service {name}/{version} already exists")
        service = Service(name=name, version=version, description=description)
        session.add(service)
        audit.record(session, actor, "service.registered", f"service:{name}/{version}")
        session.commit()
        return service.to_dict()


def find_service(session: Session, name: str, version: str) -> Service | None:
    return session.scalar(select(Service).where(Service.name == name, Service.version == version))


def get_service(session: Session, name: str, version: str) -> Service:
    service = find_service(session, name, version)
    if service is None:
        raise NotFound(f"service {name}/{version} not found")
    return service


@dataclasses.dataclass(frozen=True)
class Launchable:
    """What a launch or a plan reads of a service: what it renders, and which parts are set
    (not the orquestrator's text, which only the run step reads)."""

    id: int
    name: str
    version: str
    template: str | None
    template_format: str
    options: dict | None
    has_orquestrator: bool

    @property
    def missing(self) -> list[str]:
        return missing_parts(self.template, self.options, self.has_orquestrator)


_SERVICES = Service.__table__.c
#: the columns of Launchable, for ``:name`` and ``:version``: rows, not ORM objects (a
#: launch reads one service and changes nothing of it)
LAUNCHABLE = select(
    _SERVICES.id,
    _SERVICES.name,
    _SERVICES.version,
    _SERVICES.template,
    _SERVICES.template_format,
    _SERVICES.options,
    _SERVICES.orquestrator.is_not(None).label("has_orquestrator"),
).where(_SERVICES.name == bindparam("name"), _SERVICES.version == bindparam("version"))


def get_launchable(session: Session, name: str, version: str) -> Launchable:
    """The service ``name``/``version`` as a launch reads it; NotFound if there is none."""
    row = session.execute(LAUNCHABLE, {"name": name, "version": version}).first()
    if row is None:
        raise NotFound(f"service {name}/{version} not found")
    return Launchable(*row)


def catalog(rt: Runtime) -> list[dict]:
    """Every service name with its versions."""
    with rt.db.session() as session:
        rows = session.execute(
            select(Service.name, Service.version, Service.description).order_by(
                Service.name, Service.id
            )
        )
        by_name: dict[str, dict] = {}
        for name, version, description in rows:
            entry = by_name.setdefault(name, {"name": name, "versions": [], "description": ""})
            entry["versions"].append(version)
            entry["description"] = description
        return list(by_name.values())


def versions(rt: Runtime, name: str) -> dict:
    """Every version of the service ``name``, described."""
    with rt.db.session() as session:
        found = session.scalars(select(Service).where(Service.name == name).order_by(Service.id))
        described = [service.to_dict() for service in found]
    if not described:
        raise NotFound(f"service {name} not found")
    return {"name": name, "versions": described}


def describe_service(rt: Runtime, name: str, version: str) -> dict:
    """Which parts of one service version are set."""
    with rt.db.session() as session:
        return get_service(session, name, version).to_dict()


def _part(rt: Runtime, name: str, version: str, part: str) -> tuple[Service, Any]:
    """The service and its ``part`` (template, options, orquestrator), which must be set."""
    with rt.db.session() as session:
        service = get_service(session, name, version)
    value = getattr(service, part)
    if value is None:
        raise NotFound(f"service {name}/{version} has no {part} yet")
    return service, value


def read_template(rt: Runtime, name: str, version: str) -> tuple[str, str]:
    """The raw template and its format (json or yaml)."""
    service, template = _part(rt, name, version, "template")
    return template, service.template_format


def read_options(rt: Runtime, name: str, version: str) -> dict:
    return _part(rt, name, version, "options")[1]


def options_schema(rt: Runtime, name: str, version: str) -> dict:
    """The options document as a JSON Schema (what the CLI and the console build forms from)."""
    return document_schema(read_options(rt, name, version), title=f"{name} {version} options")


def read_orquestrator(rt: Runtime, name: str, version: str) -> str:
    return _part(rt, name, version, "orquestrator")[1]


def decode_text(raw: bytes, what: str) -> str:
    if not raw or not raw.strip():
        raise ValidationError(f"the {what} is empty", field=what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"must be UTF-8 text ({exc.reason} at byte {exc.start})", field=what
        ) from None
    if "\x00" in text:
        raise ValidationError("must not contain NUL characters", field=what)
    return text


def render_instance(
    rt: Runtime,
    template: str,
    fmt: str,
    doc: dict,
    values: Any,
    *,
    instance_id: str,
    user: str,
    service: str,
    version: str,
) -> tuple[dict, Any]:
    """Merge launch ``values`` into the defaults of ``doc`` and render the template in the
    sandbox, as the instance ``instance_id`` of ``user``; return (merged options, the spec as
    rendered). Every render of an instance's template (upload check, plan, launch, prepare)
    goes through here, so all of them see the same context."""
    merged = merge_options(doc, values)
    context = instance_context(
        merged, instance_id=instance_id, user=user, service=service, version=version
    )
    return merged, render_spec(template, context, fmt=fmt, limits=rt.render_limits())


def check_node_options(rt: Runtime, spec: dict) -> dict:
    """Refuse (422, naming each field and option) what the node runtime would refuse in a
    validated spec: ``docker_opts`` outside the safe subset, an image PAAS_IMAGE_ALLOW does not
    allow, a command that cannot be split. Checked at upload, plan and launch, so a launch
    never gets as far as a host agent to learn it."""
    problems = spec_problems(spec, rt.config.IMAGE_ALLOW or None)
    if problems:
        raise NodeOptionsError(problems)
    return spec


def check_template(
    rt: Runtime, service: Service, template: str, fmt: str, options: dict, user: str
) -> dict:
    """Render ``template`` with the defaults of ``options`` and validate the spec and its
    node runtime fields: the check an upload must pass, done as a launch of ``user`` with no
    option set would render."""
    _merged, spec = render_instance(
        rt,
        template,
        fmt,
        options,
        {},
        instance_id=TRIAL_INSTANCE_ID,
        user=user,
        service=service.name,
        version=service.version,
    )
    return check_node_options(rt, validate_spec(spec, max_nodes=rt.config.MAX_NODES))


def template_format(content_type: str | None) -> str:
    """The format of an uploaded template: YAML when its type says so, else JSON (whatever
    else it says: the original's scripts sent templates as curl's default form type)."""
    return "yaml" if content_type in YAML_TYPES else "json"


def set_template(
    rt: Runtime, name: str, version: str, raw: bytes, content_type: str, user: str
) -> dict:
    """Store a template after a syntax check and, with options set, a sandboxed test render."""
    with rt.db.session() as session:
        service = get_service(session, name, version)
        text = decode_text(raw, "template")
        fmt = template_format(content_type)
        check_syntax(text)
        if service.options is not None:
            check_template(rt, service, text, fmt, service.options, user)
        service.template, service.template_format = text, fmt
        audit.record(
            session,
            user,
            "service.template_changed",
            f"service:{name}/{version}",
            sha256=audit.digest(text),
            format=fmt,
        )
        session.commit()
        return service.to_dict()


def set_options(rt: Runtime, name: str, version: str, doc: Any, user: str) -> dict:
    """Store a validated options document; the template must still render with its defaults.

    The answer is the service with ``warnings``: what the stored document leaves out (stale
    descriptions).
    """
    with rt.db.session() as session:
        service = get_service(session, name, version)
        normalized, warnings = check_options_document(doc)
        if service.template is not None:
            try:
                check_template(
                    rt, service, service.template, service.template_format, normalized, user
                )
            except TemplateError as exc:
                raise TemplateError(
                    f"the template does not render with these defaults: {exc.reason}",
                    line=exc.line,
                ) from None
        service.options = normalized
        audit.record(
            session,
            user,
            "service.options_changed",
            f"service:{name}/{version}",
            sha256=audit.digest(normalized),
        )
        session.commit()
        return {**service.to_dict(), "warnings": warnings}


def set_orquestrator(
    rt: Runtime,
    name: str,
    version: str,
    raw: bytes,
    timeout: int | None = None,
    *,
    actor: str,
) -> dict:
    """Store the orquestrator (a Python script must at least parse) and its own time limit.

    ``timeout``: seconds a command of this service may run, None for the default; its bounds
    are checked by the caller (the API's ``ScriptQuery``).
    """
    with rt.db.session() as session:
        service = get_service(session, name, version)
        service.orquestrator, service.orquestrator_timeout = check_script(raw), timeout
        # code that will run on the platform: always traceable to who uploaded which bytes
        audit.record(
            session,
            actor,
            "service.orquestrator_changed",
            f"service:{name}/{version}",
            sha256=audit.digest(service.orquestrator),
            timeout=timeout,
        )
        session.commit()
        return service.to_dict()


def check_script(raw: bytes) -> str:
    """The orquestrator's text; a Python script (no #! line, or a python one) must parse."""
    text = decode_text(raw, "orquestrator")
    first = text.split("\n", 1)[0]
    if not first.startswith("#!") or "python" in first:
        try:
            ast.parse(text, filename="orquestrator")
        except SyntaxError as exc:
            raise ScriptError(
                f"orquestrator is not valid Python: {exc.msg}", line=exc.lineno
            ) from None
        except (ValueError, RecursionError, MemoryError) as exc:
            raise ValidationError(
                f"orquestrator cannot be parsed: {exc}", field="orquestrator"
            ) from None
    return text


def delete_service(rt: Runtime, name: str, version: str, *, actor: str) -> None:
    """Remove a service; refused while a live instance uses it."""
    with rt.db.session() as session:
        service = get_service(session, name, version)
        live = session.scalar(
            select(func.count())
            .select_from(Instance)
            .where(Instance.service_id == service.id, Instance.status.in_(states.LIVE))
        )
        if live:
            raise Conflict(
                f"service {name}/{version} is used by {live} live instance(s); destroy them first"
            )
        session.delete(service)
        audit.record(session, actor, "service.deleted", f"service:{name}/{version}")
        session.commit()
