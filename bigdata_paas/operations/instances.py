"""Launch, list, inspect and destroy instances."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from bigdata_paas import states
from bigdata_paas.errors import (
    Conflict,
    IdempotencyConflict,
    NotFound,
    PaasError,
    Unavailable,
    ValidationError,
)
from bigdata_paas.messaging.publish import (
    publish_chain,
    publish_destroy,
    publish_launch,
)
from bigdata_paas.models import Event, Instance, LogLine, Service, User, new_instance_id
from bigdata_paas.operations.allocations import compute, node_demands
from bigdata_paas.operations.lifecycle.transitions import advance
from bigdata_paas.operations.services import check_node_options, get_service, render_instance
from bigdata_paas.placement import NoFit
from bigdata_paas.rendering import validate_spec
from bigdata_paas.runtime import Runtime


def _ready(service: Service) -> None:
    if service.missing:
        raise Conflict(
            f"service {service.name}/{service.version} is not ready: "
            f"missing {', '.join(service.missing)}"
        )


def dry_render(
    rt: Runtime, service: Service, values: Any, user: User, instance_id: str
) -> tuple[dict, dict]:
    """Validate options and render the spec as the prepare step will; (merged, spec)."""
    merged, spec = render_instance(
        rt,
        service.template,
        service.template_format,
        service.options,
        values,
        instance_id=instance_id,
        user=user.name,
        service=service.name,
        version=service.version,
    )
    nodes = spec.get("nodes") if isinstance(spec, dict) else None
    if isinstance(nodes, dict) and len(nodes) > rt.config.MAX_NODES:
        raise ValidationError(
            f"these options make {len(nodes)} nodes; the maximum per instance is "
            f"{rt.config.MAX_NODES}",
            field="options",
        )
    return merged, check_node_options(rt, validate_spec(spec, max_nodes=rt.config.MAX_NODES))


@dataclasses.dataclass
class Launch:
    """What a launch answered: the instance, and whether an earlier launch made it."""

    instance: Instance
    replayed: bool = False


def launch_digest(name: str, version: str, values: Any) -> str:
    """A digest of what a launch asks for: equal JSON (any key order, any spacing) is equal."""
    canonical = json.dumps(
        [name, version, values], sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _keyed(session: Session, user: User, key: str) -> Instance | None:
    return session.scalar(
        select(Instance).where(Instance.user_id == user.id, Instance.idempotency_key == key)
    )


def _replay(instance: Instance, key: str, digest: str) -> Launch:
    if instance.launch_digest != digest:
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was already used for another launch "
            f"({instance.service_name}/{instance.service_version}, instance {instance.id}) "
            "with a different service, version or options; use a new key for a new launch",
            details={"instance": instance.id},
        )
    return Launch(instance, replayed=True)


def launch_instance(
    rt: Runtime,
    session: Session,
    user: User,
    name: str,
    version: str,
    values: Any,
    idempotency_key: str | None = None,
) -> Launch:
    """Validate, commit the instance, then start the pipeline; nothing stays if that fails.

    With an ``idempotency_key``, a launch this user already made with that key is answered
    again (same service, version and options) or refused with a conflict (anything else);
    the unique (user, key) constraint settles two concurrent launches with one key.
    """
    digest = launch_digest(name, version, values) if idempotency_key else None
    if idempotency_key:
        existing = _keyed(session, user, idempotency_key)
        if existing is not None:
            return _replay(existing, idempotency_key, digest)
    service = get_service(session, name, version)
    _ready(service)
    instance_id = new_instance_id()
    dry_render(rt, service, values, user, instance_id)
    instance = Instance(
        id=instance_id,
        user_id=user.id,
        service_id=service.id,
        service_name=service.name,
        service_version=service.version,
        status=states.PENDING,
        options=values,
        idempotency_key=idempotency_key,
        launch_digest=digest,
    )
    session.add(instance)
    try:
        session.flush()
    except IntegrityError:
        # With a key, this is the (user, key) constraint: a concurrent launch with the key
        # committed first. Answer with its instance, as if this request came after it.
        session.rollback()
        winner = _keyed(session, user, idempotency_key) if idempotency_key else None
        if winner is None:
            if idempotency_key is None:
                raise
            # The winner's publish failed and removed it: as for the winner, nothing started.
            raise Unavailable(
                "a concurrent launch with this Idempotency-Key could not start; "
                "nothing was started, try again"
            ) from None
        return _replay(winner, idempotency_key, digest)
    session.add(
        Event(
            instance_id=instance_id,
            step="launch",
            status=states.PENDING,
            message="accepted; pipeline enqueued",
        )
    )
    session.commit()
    try:
        publish_launch(rt.celery, instance_id)
    except Unavailable:
        # The key goes with the row: a retry with the same key launches again.
        session.execute(delete(Instance).where(Instance.id == instance_id))
        session.commit()
        raise
    return Launch(instance)


def plan(rt: Runtime, session: Session, user: User, name: str, version: str, values: Any) -> dict:
    """Render and place without allocating: what would run where, or why it cannot."""
    service = get_service(session, name, version)
    _ready(service)
    _, spec = dry_render(rt, service, values, user, new_instance_id())
    strategy = spec.get("placement_strategy", rt.config.PLACEMENT_STRATEGY)
    demands = node_demands(spec)
    body: dict = {
        "service": name,
        "version": version,
        "nodes": len(demands),
        "cpu": sum(d.cpu for d in demands),
        "mem": sum(d.mem for d in demands),
    }
    try:
        result = compute(session, spec, strategy)
    except NoFit as exc:
        session.rollback()
        return {
            **body,
            "fits": False,
            "reason": str(exc),
            "shortages": [dataclasses.asdict(s) for s in exc.shortages],
        }
    session.rollback()
    return {
        **body,
        "fits": True,
        "strategy": strategy,
        "placement": [
            {
                "node": p.node,
                "host": p.host,
                "disks": {d: hd.name for d, hd in p.disks.items()},
                "addresses": {dev: a.address for dev, a in p.nics.items()},
            }
            for p in result.nodes.values()
        ],
    }


def visible_instances(user: User):
    query = select(Instance)
    if not user.is_admin:
        query = query.where(Instance.user_id == user.id)
    return query


def list_instances(session: Session, user: User, args: dict, default_size: int) -> dict:
    """One page of the instances ``user`` may see, newest first."""
    problems = []

    def number(key: str, default: int, high: int) -> int:
        raw = args.get(key, str(default))
        # isdigit() alone admits "²" (int() refuses it) and 5000-digit strings (int() refuses)
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or not 1 <= int(raw) <= high:
            problems.append({"field": key, "message": f"must be an integer 1..{high}"})
            return default
        return int(raw)

    page, size = number("page", 1, 10**6), number("per_page", default_size, 500)
    query = visible_instances(user)
    for key, column in (
        ("service", Instance.service_name),
        ("version", Instance.service_version),
        ("status", Instance.status),
    ):
        if key in args:
            if key == "status" and args[key] not in states.STATUSES:
                problems.append(
                    {"field": "status", "message": f"must be one of {', '.join(states.STATUSES)}"}
                )
            query = query.where(column == args[key])
    if "user" in args:
        if not user.is_admin:
            problems.append({"field": "user", "message": "only admins can filter by user"})
        query = query.join(User, User.id == Instance.user_id).where(User.name == args["user"])
    if problems:
        raise ValidationError(problems)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(
        query.options(selectinload(Instance.user))
        .order_by(Instance.created_at.desc(), Instance.id)
        .offset((page - 1) * size)
        .limit(size)
    )
    return {
        "items": [i.to_dict(with_nodes=False) for i in rows],
        "page": page,
        "per_page": size,
        "total": total,
    }


def get_instance(session: Session, user: User, instance_id: str) -> Instance:
    """The instance, if ``user`` may see it (another user's is not found, not forbidden)."""
    instance = session.scalar(visible_instances(user).where(Instance.id == instance_id))
    if instance is None:
        raise NotFound(f"instance {instance_id} not found")
    return instance


def events(session: Session, instance: Instance) -> list[dict]:
    rows = session.scalars(select(Event).where(Event.instance_id == instance.id).order_by(Event.id))
    return [e.to_dict() for e in rows]


def logs(session: Session, instance: Instance, after: str | None, limit: int = 1000) -> dict:
    """Orquestrator output lines; ``after`` = the last id seen, to follow new lines."""
    # ASCII digits only, and below 2**63: SQLite integers are 64-bit
    if after is not None and not (after.isascii() and after.isdigit() and len(after) <= 18):
        raise ValidationError("must be a log line id", field="after")
    query = select(LogLine).where(LogLine.instance_id == instance.id)
    if after:
        query = query.where(LogLine.id > int(after))
    lines = [line.to_dict() for line in session.scalars(query.order_by(LogLine.id).limit(limit))]
    return {"lines": lines, "last": lines[-1]["id"] if lines else (int(after) if after else 0)}


def destroy_instance(rt: Runtime, session: Session, instance: Instance) -> Instance:
    """Mark the instance destroying and hand it to the orquestrator worker."""
    previous = instance.status
    if previous == states.DESTROYING:
        return instance
    if previous not in states.DESTROYABLE:
        raise Conflict(f"instance {instance.id} is {previous}; it cannot be destroyed")
    if not advance(
        session,
        instance.id,
        "destroy",
        states.DESTROYING,
        f"destroy requested (was {previous})",
        source=previous,
    ):
        raise Conflict(f"instance {instance.id} changed status; try again")
    session.commit()
    try:
        publish_destroy(rt.celery, instance.id)
    except PaasError:
        advance(
            session,
            instance.id,
            "destroy",
            previous,
            "destroy not started: broker unreachable",
            source=states.DESTROYING,
        )
        session.commit()
        raise
    session.refresh(instance)
    return instance


def destroy_every_instance(rt: Runtime, session: Session) -> list[dict]:
    """Ask for the destroy of every instance not destroyed yet, oldest first (an operator
    clearing a deployment, the demo's ``paas destroy-all``); one line of what happened each:
    ``{"id", "service", "version", "status"}``, plus ``error`` where it was refused."""
    found = list(
        session.scalars(
            select(Instance)
            .where(Instance.status != states.DESTROYED)
            .order_by(Instance.created_at, Instance.id)
        )
    )
    done = []
    for instance in found:
        line = {
            "id": instance.id,
            "service": instance.service_name,
            "version": instance.service_version,
        }
        try:
            line["status"] = destroy_instance(rt, session, instance).status
        except PaasError as exc:
            session.rollback()
            line["status"] = instance.status
            line["error"] = exc.message
        done.append(line)
    return done


def retry_instance(rt: Runtime, session: Session, instance: Instance) -> Instance:
    """Run a failed instance again from its failed step.

    Failure released every allocation, so a failed schedule or run goes back
    to the queue to be placed again; a failed prepare renders again.
    """
    if instance.status != states.FAILED:
        raise Conflict(f"instance {instance.id} is {instance.status}; only a failed one retries")
    if instance.failed_step not in states.RETRY_FROM:
        raise Conflict(f"instance {instance.id} failed at {instance.failed_step}; it cannot retry")
    status, first = states.RETRY_FROM[instance.failed_step]
    step, reason = instance.failed_step, instance.error
    if not advance(
        session,
        instance.id,
        "retry",
        status,
        f"retry from {first} after: {reason}"[:4000],
        failed_step=None,
        error=None,
        started_at=None,
        run_token=None,
        wait_reason=None,
    ):
        raise Conflict(f"instance {instance.id} changed status; try again")
    session.commit()
    try:
        publish_chain(rt.celery, instance.id, first)
    except PaasError:
        advance(
            session,
            instance.id,
            "retry",
            states.FAILED,
            "retry not started: broker unreachable",
            source=status,
            failed_step=step,
            error=reason,
        )
        session.commit()
        raise
    session.refresh(instance)
    return instance
