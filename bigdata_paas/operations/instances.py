"""Launch, list, inspect and destroy instances."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from types import SimpleNamespace
from typing import Any, cast

import psycopg
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
from bigdata_paas.operations.lifecycle.transitions import (
    INSERT_EVENT,
    advance,
    event_row,
    note,
)
from bigdata_paas.operations.reads import (
    BEGIN,
    COMMIT,
    driver_connection,
    driver_values,
    read_connection,
    run_script,
)
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


def _replay_keyed(rt: Runtime, user: Caller, key: str, digest: str | None) -> Launch | None:
    """The launch this user already made with ``key``, answered again; None if none did."""
    with rt.db.session() as session:
        existing = _keyed(session, user, key)
        return None if existing is None else _replay(existing, key, digest)


def _replay_winner(rt: Runtime, user: Caller, key: str, digest: str | None) -> Launch:
    """The answer to a launch that lost the race for its key (the (user, key) constraint
    refused its row): the winner's instance, as if this request came after it."""
    replayed = _replay_keyed(rt, user, key, digest)
    if replayed is None:
        # The winner's publish failed and removed it: as for the winner, nothing started.
        raise Unavailable(
            "a concurrent launch with this Idempotency-Key could not start; "
            "nothing was started, try again"
        )
    return replayed


_INSTANCES = cast(Table, Instance.__table__)
#: the columns a launch gives its row (the others are NULL, or their defaults)
LAUNCH_COLUMNS = (
    "id",
    "user_id",
    "service_id",
    "service_name",
    "service_version",
    "status",
    "options",
    "merged_options",
    "spec",
    "idempotency_key",
    "launch_digest",
    "created_at",
    "updated_at",
    "held_nodes",
    "held_cpu",
    "held_mem",
    "held_disks",
)
#: a launch's row, as a Core INSERT (a unit of work for it cost more than the row); the
#: columns with a default in Python, and not given, written with it (the driver runs it as
#: compiled: no Core to fill them in)
INSERT_INSTANCE = insert(_INSTANCES).values(
    {**{name: bindparam(name) for name in LAUNCH_COLUMNS}, "run_attempts": 0}
)
#: the (user, Idempotency-Key) launch, if it exists, for ``:user_id`` and ``:key``
KEYED = select(_INSTANCES.c.id).where(
    _INSTANCES.c.user_id == bindparam("user_id"),
    _INSTANCES.c.idempotency_key == bindparam("key"),
)
#: the first event of every launch
ACCEPTED = "accepted; pipeline enqueued"

#: what a launch reads along with its token check on PostgreSQL (users.Rider, for ``:name``
#: and ``:version``): the service, as LAUNCHABLE's columns (NULL: there is none), then the
#: caller's own limits and the default ones (the quota check's hint)
LAUNCH_READ = (
    "json_build_array("
    "(SELECT json_build_array(s.id, s.name, s.version, s.template, s.template_format, "
    "s.options, s.orquestrator IS NOT NULL) FROM services s "
    "WHERE s.name = :name AND s.version = :version), "
    f"u.quota, (SELECT value FROM settings WHERE key = '{quotas.DEFAULT_KEY}'))"
)


def launch_read(name: str, version: str) -> Rider | None:
    """What a launch asks along with its token check: the service ``name``/``version`` and
    the caller's limits, if these can be a service's name and version at all."""
    if len(name) > 64 or len(version) > 64 or "\x00" in name + version:
        return None  # no service has them: the view reads (and answers a 404, or a 400)
    return Rider(LAUNCH_READ, {"name": name, "version": version})


def launch_instance(
    rt: Runtime,
    user: Caller,
    name: str,
    version: str,
    values: Any,
    idempotency_key: str | None = None,
    ridden: Any = None,
) -> Launch:
    """Validate, commit the instance, then start the pipeline; nothing stays if that fails.

    With an ``idempotency_key``, a launch this user already made with that key is answered
    again (same service, version and options) or refused with a conflict (anything else);
    the unique (user, key) constraint settles two concurrent launches with one key.
    ``ridden``: what the token check read along (LAUNCH_READ's array), if it did.
    """
    key = idempotency_key
    digest = launch_digest(name, version, values) if key else None
    if key:
        replayed = _replay_keyed(rt, user, key, digest)
        if replayed is not None:
            return replayed
    service, hint = _launchable(rt, name, version, ridden)
    _ready(service)
    instance_id = new_instance_id()
    merged, spec = dry_render(rt, service, values, user, instance_id)
    usage = quotas.usage_of_spec(spec)
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
        "idempotency_key": key,
        "launch_digest": digest,
        "created_at": now,
        "updated_at": now,
        **usage.held_columns(),
    }
    if rt.db.is_sqlite:
        committed = _commit_in_session(rt, user, row, usage)
    else:
        committed = _commit_on_driver(rt, user, row, usage, hint)
    if not committed:
        # Another launch with this key committed first (before this one locked the user's
        # row, or while it inserted): it is answered again, not counted a second time.
        return _replay_winner(rt, user, cast(str, key), digest)
    # The answer is made before the publish: once it is published the launch has happened,
    # and no later database error may turn it into a 503. The new instance has no nodes,
    # and its owner is the caller: nothing to read.
    answer = instance_dict(SimpleNamespace(**row), user.name, nodes=[])
    try:
        publish_launch(rt.celery, instance_id)
    except Unavailable:
        # The key goes with the row: a retry with the same key launches again.
        with rt.db.session() as session:
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


def _launchable(
    rt: Runtime, name: str, version: str, ridden: Any
) -> tuple[Launchable, dict[str, int | None] | None]:
    """The service a launch renders and, when the token check read them along (PostgreSQL),
    the caller's limits as they were a moment ago: the quota check's hint (None: unknown)."""
    if ridden is None:
        with rt.db.session() as session:
            return get_launchable(session, name, version), None
    service, quota, default = ridden
    if service is None:
        raise NotFound(f"service {name}/{version} not found")
    return Launchable(*service), quotas.merged_limits(rt.config, default, quota)


def _commit_in_session(rt: Runtime, user: Caller, row: dict, usage: quotas.Usage) -> bool:
    """Check the quota and commit the launch's row and its first event in one transaction
    (SQLite's, which takes the write lock first); False if a launch with its key committed
    first."""
    key = row["idempotency_key"]
    with rt.db.session() as session:
        # From here until the commit the user's row is locked: their launches are decided one
        # at a time, so that two cannot both take the last of a quota.
        found = quotas.excesses(session, rt.config, user.id, usage)
        if key and _keyed(session, user, key) is not None:
            return False
        if found:
            raise QuotaExceeded(found)
        try:
            session.execute(INSERT_INSTANCE, row)
        except IntegrityError:
            # With a key, this is the (user, key) constraint: a concurrent launch with the
            # key committed first.
            if key is None:
                raise
            return False
        note(session, row["id"], "launch", states.PENDING, ACCEPTED)
        session.commit()
    return True


def _commit_on_driver(
    rt: Runtime,
    user: Caller,
    row: dict,
    usage: quotas.Usage,
    hint: dict[str, int | None] | None,
) -> bool:
    """The same on PostgreSQL, in a transaction of two round trips on the driver (the
    Session took seven): the user's row locked and what the check counts read in one script,
    then the launch's row and first event inserted and committed in another.

    A user whose limits (``hint``) were none shares the lock (quotas.excesses); should they
    have just been given some, the check is made again under the user's row lock.
    """
    key = row["idempotency_key"]
    with driver_connection(rt) as driver:
        shared = hint is not None and quotas.unlimited(hint)
        limits, used, keyed = _locked_reads(rt, driver, user.id, key, shared=shared, first=True)
        if shared and not quotas.unlimited(limits):
            limits, used, keyed = _locked_reads(rt, driver, user.id, key, shared=False)
        if keyed:
            return False
        found = quotas.over(limits, used, usage) if used is not None else []
        if found:
            raise QuotaExceeded(found)
        event = event_row(row["id"], "launch", states.PENDING, ACCEPTED, at=row["created_at"])
        try:
            run_script(
                rt,
                driver,
                [
                    (INSERT_INSTANCE, driver_values(_INSTANCES, row)),
                    (INSERT_EVENT, event),
                    (COMMIT, {}),
                ],
            )
        except psycopg.errors.UniqueViolation:
            if key is None:
                raise
            return False  # the (user, key) constraint: a launch with the key came first
        except psycopg.errors.ForeignKeyViolation:
            # the service was deleted since it was read (or the user)
            raise NotFound(
                f"service {row['service_name']}/{row['service_version']} not found"
            ) from None
    return True


def _locked_reads(
    rt: Runtime,
    driver: psycopg.Connection,
    user_id: int,
    key: str | None,
    *,
    shared: bool,
    first: bool = False,
) -> tuple[dict[str, int | None], quotas.Usage | None, bool]:
    """In one round trip (the transaction's ``first``: it begins it): the user's limits
    under a lock on their row (shared, or their own), what they hold (unless the lock is
    shared: nothing to count) and whether a launch with ``key`` is stored; (limits, held,
    keyed)."""
    params = {"user_id": user_id}
    lock = quotas.LIMITS_OF_USER_SHARED if shared else quotas.LIMITS_OF_USER_LOCKED
    steps: list = [(BEGIN, {})] if first else []
    steps.append((lock, params))
    if not shared:
        steps.append((quotas.HELD_BY, params))
    if key:
        steps.append((KEYED, {**params, "key": key}))
    answers = run_script(rt, driver, steps)[1 if first else 0 :]
    if not answers[0]:
        raise NotFound(f"user {user_id} not found")
    return (
        quotas.limits_of_row(rt.config, answers[0][0]),
        None if shared else quotas.usage_of_row(answers[1][0]),
        bool(key) and bool(answers[-1]),
    )


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
