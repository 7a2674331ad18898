"""Launch, list, inspect and destroy instances."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from bigdata_paas import states
from bigdata_paas.errors import (
    Conflict,
    IdempotencyConflict,
    NotFound,
    PaasError,
    QuotaExceeded,
    Unavailable,
    ValidationError,
)
from bigdata_paas.messaging.publish import (
    publish_chain,
    publish_destroy,
    publish_launch,
)
from bigdata_paas.models import Instance, LogLine, Node, Service, User, new_instance_id
from bigdata_paas.models.base import utcnow
from bigdata_paas.models.instance import instance_body, instance_dict, node_body, rendered
from bigdata_paas.operations import quotas
from bigdata_paas.operations.allocations import compute, node_demands
from bigdata_paas.operations.lifecycle.transitions import advance, note
from bigdata_paas.operations.reads import read_connection
from bigdata_paas.operations.services import (
    Launchable,
    check_node_options,
    get_launchable,
    render_instance,
)
from bigdata_paas.operations.users import Caller, Rider
from bigdata_paas.placement import NoFit
from bigdata_paas.rendering import validate_spec
from bigdata_paas.runtime import Runtime

log = logging.getLogger(__name__)


def _ready(service: Service | Launchable) -> None:
    if service.missing:
        raise Conflict(
            f"service {service.name}/{service.version} is not ready: "
            f"missing {', '.join(service.missing)}"
        )


def dry_render(
    rt: Runtime, service: Service | Launchable, values: Any, user: Caller, instance_id: str
) -> tuple[dict, dict]:
    """Validate options and render the spec as the prepare step will; (merged, spec)."""
    if service.template is None or service.options is None:  # callers checked _ready first
        raise Conflict(f"service {service.name}/{service.version} has no template or options")
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

    instance: dict
    replayed: bool = False


def launch_digest(name: str, version: str, values: Any) -> str:
    """A digest of what a launch asks for: equal JSON (any key order, any spacing) is equal."""
    canonical = json.dumps(
        [name, version, values], sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _keyed(session: Session, user: Caller, key: str) -> Instance | None:
    return session.scalar(
        select(Instance).where(Instance.user_id == user.id, Instance.idempotency_key == key)
    )


def _replay(instance: Instance, key: str, digest: str | None) -> Launch:
    if instance.launch_digest != digest:
        raise IdempotencyConflict(
            f"Idempotency-Key {key!r} was already used for another launch "
            f"({instance.service_name}/{instance.service_version}, instance {instance.id}) "
            "with a different service, version or options; use a new key for a new launch",
            details={"instance": instance.id},
        )
    return Launch(instance.to_dict(), replayed=True)


#: a launch's row, as a Core INSERT (a unit of work for it cost more than the row); its event
#: goes in as every event does (note)
INSERT_INSTANCE = insert(cast(Table, Instance.__table__))


def launch_instance(
    rt: Runtime,
    user: Caller,
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
    with rt.db.session() as session:
        return _launch(rt, session, user, name, version, values, idempotency_key)


def _launch(
    rt: Runtime,
    session: Session,
    user: Caller,
    name: str,
    version: str,
    values: Any,
    idempotency_key: str | None,
) -> Launch:
    digest = launch_digest(name, version, values) if idempotency_key else None
    if idempotency_key:
        existing = _keyed(session, user, idempotency_key)
        if existing is not None:
            return _replay(existing, idempotency_key, digest)
    service = get_launchable(session, name, version)
    _ready(service)
    instance_id = new_instance_id()
    merged, spec = dry_render(rt, service, values, user, instance_id)
    usage = quotas.usage_of_spec(spec)
    # From here until the commit the user's row is locked: their launches are decided one at
    # a time, so that two cannot both take the last of a quota.
    found = quotas.excesses(session, rt.config, user.id, usage)
    if idempotency_key:
        # A launch with this key may have committed while this one rendered or waited for
        # the lock: it is answered again, not counted a second time.
        existing = _keyed(session, user, idempotency_key)
        if existing is not None:
            return _replay(existing, idempotency_key, digest)
    if found:
        raise QuotaExceeded(found)
    now = utcnow()
    row = {
        "id": instance_id,
        "user_id": user.id,
        "service_id": service.id,
        "service_name": service.name,
        "service_version": service.version,
        "status": states.PENDING,
        "options": values,
        # Rendered once, here, with this instance's id: prepare stores these as they are.
        "merged_options": merged,
        "spec": spec,
        "idempotency_key": idempotency_key,
        "launch_digest": digest,
        "created_at": now,
        "updated_at": now,
        **usage.held_columns(),
    }
    try:
        session.execute(INSERT_INSTANCE, row)
    except IntegrityError:
        # With a key, this is the (user, key) constraint: a concurrent launch with the key
        # committed first. Answer with its instance, as if this request came after it.
        session.rollback()
        winner = _keyed(session, user, idempotency_key) if idempotency_key else None
        if winner is None or idempotency_key is None:  # a winner is found by its key
            if idempotency_key is None:
                raise
            # The winner's publish failed and removed it: as for the winner, nothing started.
            raise Unavailable(
                "a concurrent launch with this Idempotency-Key could not start; "
                "nothing was started, try again"
            ) from None
        return _replay(winner, idempotency_key, digest)
    note(session, instance_id, "launch", states.PENDING, "accepted; pipeline enqueued")
    # The answer is made before the commit: once the pipeline is published the launch has
    # happened, and no later database error may turn it into a 503. The new instance has no
    # nodes, and its owner is the caller: nothing to read.
    answer = instance_dict(SimpleNamespace(**row), user.name, nodes=[])
    session.commit()
    try:
        publish_launch(rt.celery, instance_id)
    except Unavailable:
        # The key goes with the row: a retry with the same key launches again.
        session.execute(delete(Instance).where(Instance.id == instance_id))
        session.commit()
        raise
    log.info(
        "instance %s of %s/%s launched",
        instance_id,
        name,
        version,
        extra={"instance_id": instance_id},
    )
    return Launch(answer)


def plan(rt: Runtime, user: Caller, name: str, version: str, values: Any) -> dict:
    """Render and place without allocating: what would run where, or why it cannot."""
    with rt.db.session() as session:
        return _plan(rt, session, user, name, version, values)


def _plan(
    rt: Runtime, session: Session, user: Caller, name: str, version: str, values: Any
) -> dict:
    service = get_launchable(session, name, version)
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
    exceeded = quotas.excesses(session, rt.config, user.id, quotas.usage_of_spec(spec), lock=False)
    body["quota"] = {"allowed": not exceeded, "exceeded": exceeded}
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


def visible_instances(user: Caller):
    query = select(Instance)
    if not user.is_admin:
        query = query.where(Instance.user_id == user.id)
    return query


#: a list counts its matches up to this many (beyond, its total is null: an exact count of
#: 100,000 instances costs more than the page itself)
COUNT_LIMIT = 10_000


def list_instances(
    rt: Runtime,
    user: Caller,
    page: int = 1,
    per_page: int | None = None,
    service: str | None = None,
    version: str | None = None,
    status: str | None = None,
    owner: str | None = None,
) -> dict:
    """One page of the instances ``user`` may see, newest first, filtered by whatever is
    given; ``per_page`` defaults to PAAS_PAGE_SIZE. Only admins filter by ``owner``.
    ``has_more`` says whether a next page has items; ``total`` is exact up to COUNT_LIMIT."""
    if owner is not None and not user.is_admin:
        raise ValidationError([{"field": "user", "message": "only admins can filter by user"}])
    size = per_page or rt.config.PAGE_SIZE
    query = visible_instances(user)
    for value, column in (
        (service, Instance.service_name),
        (version, Instance.service_version),
        (status, Instance.status),
    ):
        if value is not None:
            query = query.where(column == value)
    if owner is not None:
        query = query.join(User, User.id == Instance.user_id).where(User.name == owner)
    counted = query.with_only_columns(Instance.id).limit(COUNT_LIMIT + 1).subquery()
    with rt.db.session() as session:
        total = session.scalar(select(func.count()).select_from(counted))
        rows = list(
            session.scalars(
                query.options(joinedload(Instance.user))
                .order_by(Instance.created_at.desc(), Instance.id.desc())
                .offset((page - 1) * size)
                .limit(size + 1)
            )
        )
        items = [i.to_dict(with_nodes=False) for i in rows[:size]]
    return {
        "items": items,
        "page": page,
        "per_page": size,
        "total": total if total is not None and total <= COUNT_LIMIT else None,
        "has_more": len(rows) > size,
    }


def get_instance(session: Session, user: Caller, instance_id: str) -> Instance:
    """The instance, if ``user`` may see it (another user's is not found, not forbidden)."""
    instance = session.scalar(visible_instances(user).where(Instance.id == instance_id))
    if instance is None:
        raise NotFound(f"instance {instance_id} not found")
    return instance


#: the columns GET /instances/{id} shows of a node (node_body), in node_body's order
NODE_COLUMNS = (Node.name, Node.cpu, Node.mem, Node.spec, Node.placement, Node.runtime)


def version(instance: str, owner: str) -> str:
    """SQL (PostgreSQL) for a version of what GET /instances/{id} shows of ``instance`` with
    owner ``owner`` (the names or aliases of their tables): the row versions of the instance,
    of its owner and of each of its nodes (xmin: the transaction that wrote the row).
    Another write to any of them, or a node added or removed, gives another version; as long
    as none comes, the same."""
    nodes = (
        "SELECT string_agg(concat_ws('.', n.id, n.xmin), ',' ORDER BY n.id) "
        f"FROM nodes n WHERE n.instance_id = {instance}.id"
    )
    return f"concat_ws(' ', {instance}.xmin, coalesce({owner}.xmin::text, '-'), ({nodes}))"


#: the rider of GET /instances/{id}'s token check (users.Rider): the version of the
#: instance as ``u``, the caller, may see it (as visible_instances), NULL when they may not
SEEN = (
    f"(SELECT {version('i', 'o')} FROM instances i LEFT JOIN users o ON o.id = i.user_id "
    "WHERE i.id = :instance_id AND (u.role = 'admin' OR i.user_id = u.id))"
)


def seen_by(instance_id: str) -> Rider | None:
    """What GET /instances/{id} asks along with its token check: the version of the
    instance the caller sees, if ``instance_id`` can be an instance's id at all."""
    if len(instance_id) > 32 or "\x00" in instance_id:
        return None  # no instance has it: the view answers (a 404, a 400 for a NUL)
    return Rider(SEEN, {"instance_id": instance_id})


@functools.cache
def detail_query(postgresql: bool, admin: bool) -> Select:
    """The select of GET /instances/{id} (made once: building it costs more than running it):
    the columns instance_body shows and its owner's name, ``:instance_id`` visible to
    ``:user_id`` unless ``admin``; on PostgreSQL its nodes too, as ``node_rows`` (gathered by
    the server, a round trip fewer), and the version of all that, as ``version``."""
    columns: list = [
        Instance.id,
        Instance.service_name,
        Instance.service_version,
        Instance.status,
        Instance.options,
        Instance.merged_options,
        Instance.spec,
        Instance.failed_step,
        Instance.error,
        Instance.wait_reason,
        Instance.resize,
        Instance.created_at,
        Instance.updated_at,
        User.name.label("user_name"),
    ]
    if postgresql:
        node = func.json_build_array(*NODE_COLUMNS)
        gathered = func.json_agg(aggregate_order_by(node, Node.id), type_=JSON)
        nodes = select(gathered).where(Node.instance_id == Instance.id).scalar_subquery()
        columns.append(nodes.label("node_rows"))
        columns.append(literal_column(version("instances", "users")).label("version"))
    query = select(*columns).outerjoin(User, User.id == Instance.user_id)
    query = query.where(Instance.id == bindparam("instance_id"))
    if not admin:  # someone else's is not found (as visible_instances)
        query = query.where(Instance.user_id == bindparam("user_id"))
    return query


NODES_OF_INSTANCE = (
    select(*NODE_COLUMNS).where(Node.instance_id == bindparam("instance_id")).order_by(Node.id)
)


def describe_instance(rt: Runtime, user: Caller, instance_id: str) -> dict:
    """Status, options, nodes with their hosts, and the error of a failed one."""
    return describe_instance_versioned(rt, user, instance_id)[0]


def describe_instance_versioned(
    rt: Runtime, user: Caller, instance_id: str
) -> tuple[dict, str | None]:
    """describe_instance(), and on PostgreSQL the version of what it shows (``version``),
    read in the same statement (None on SQLite).

    The hot read of a client following its instance: the columns shown, as rows (no ORM
    objects), in one statement on PostgreSQL and two on SQLite.
    """
    postgresql = not rt.db.is_sqlite
    query = detail_query(postgresql, user.is_admin)
    with read_connection(rt) as conn:
        found = conn.execute(query, {"instance_id": instance_id, "user_id": user.id}).first()
        if found is None:
            raise NotFound(f"instance {instance_id} not found")
        if postgresql:
            nodes = found.node_rows or []
        else:
            nodes = conn.execute(NODES_OF_INSTANCE, {"instance_id": instance_id}).all()
    body = instance_body(found, found.user_name)
    merged, services = rendered(found)
    body["merged_options"] = merged
    body["nodes"] = [node_body(*node) for node in nodes]
    body["services"] = services
    return body, found.version if postgresql else None


def check_visible(rt: Runtime, user: Caller, instance_id: str) -> None:
    """Raise NotFound unless ``user`` may see the instance (someone else's is a 404 too)."""
    with rt.db.session() as session:
        get_instance(session, user, instance_id)


def logs(
    rt: Runtime, user: Caller, instance_id: str, after: int | None = None, limit: int = 1000
) -> dict:
    """Orquestrator output lines; ``after`` = the last id seen, to follow new lines."""
    with rt.db.session() as session:
        instance = get_instance(session, user, instance_id)
        query = select(LogLine).where(LogLine.instance_id == instance.id)
        if after:
            query = query.where(LogLine.id > after)
        rows = session.scalars(query.order_by(LogLine.id).limit(limit))
        lines = [line.to_dict() for line in rows]
    return {"lines": lines, "last": lines[-1]["id"] if lines else (after or 0)}


def destroy_instance(rt: Runtime, user: Caller, instance_id: str) -> dict:
    """Mark the instance destroying and hand it to the orquestrator worker."""
    with rt.db.session() as session:
        instance = get_instance(session, user, instance_id)
        previous = instance.status
        if previous == states.DESTROYING:
            return instance.to_dict()
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
        session.refresh(instance)
        answer = instance.to_dict()
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
    return answer


def destroy_every_instance(rt: Runtime, user: Caller) -> list[dict]:
    """Ask for the destroy of every instance ``user`` may see that is not destroyed yet,
    oldest first (an admin clearing a deployment: ``paas destroy-all``); one line of what
    happened each: ``{"id", "service", "version", "status"}``, plus ``error`` where it was
    refused."""
    with rt.db.session() as session:
        found = [
            {"id": i.id, "service": i.service_name, "version": i.service_version}
            for i in session.scalars(
                visible_instances(user)
                .where(Instance.status != states.DESTROYED)
                .order_by(Instance.created_at, Instance.id)
            )
        ]
    for line in found:
        try:
            line["status"] = destroy_instance(rt, user, line["id"])["status"]
        except PaasError as exc:
            line["error"] = exc.message
    return found


def retry_instance(rt: Runtime, user: Caller, instance_id: str) -> dict:
    """Run a failed instance again from its failed step.

    Failure released every allocation, so a failed schedule or run goes back
    to the queue to be placed again; a failed prepare renders again.
    """
    with rt.db.session() as session:
        instance = get_instance(session, user, instance_id)
        if instance.status != states.FAILED:
            raise Conflict(
                f"instance {instance.id} is {instance.status}; only a failed one retries"
            )
        if instance.failed_step not in states.RETRY_FROM:
            raise Conflict(
                f"instance {instance.id} failed at {instance.failed_step}; it cannot retry"
            )
        status, first = states.RETRY_FROM[instance.failed_step]
        step, reason = instance.failed_step, instance.error
        # A prepare that failed renders again, from the service as it is now.
        again: dict[str, Any] = {"spec": None, "merged_options": None} if first == "prepare" else {}
        # a failed instance holds nothing: running it again takes its share of the quota back
        quotas.enforce(
            session, rt.config, instance.user_id, quotas.Usage.held_by_instance(instance)
        )
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
            **again,
        ):
            raise Conflict(f"instance {instance.id} changed status; try again")
        session.commit()
        session.refresh(instance)
        answer = instance.to_dict()
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
    return answer
