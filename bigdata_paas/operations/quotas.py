"""Quotas: how much of the platform one user may hold at once.

A user's limits are, per resource, the one an admin set for that user, else the default an
admin set for everyone (the ``default_quota`` setting), else the PAAS_DEFAULT_QUOTA_* variable;
None at any level is unlimited. What a user holds is the sum over their live instances (every
status that is not failed or destroyed: a queued instance counts as much as a running one) of
what each recorded at launch (``Instance.held_*``).

A check locks the user's row first (``SELECT ... FOR UPDATE``; SQLite's write transactions
are already one at a time), so that two launches of one user are decided one after the other
and cannot both fit into the last free slot. The lock is held until the caller commits the
instance (or the resize) it checked. A user with no limit at all has no slot to race for:
their check takes a share lock (``FOR SHARE``), which their other launches share and which
only holds off a change of their quota, so their launches no longer queue behind each other.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, func, literal_column, select
from sqlalchemy.orm import Session

from bigdata_paas import states
from bigdata_paas.errors import NotFound, QuotaExceeded, ValidationError
from bigdata_paas.models import Instance, Setting, User
from bigdata_paas.operations import audit
from bigdata_paas.rendering.spec import node_totals
from bigdata_paas.runtime import Runtime
from bigdata_paas.settings import Config

RESOURCES = ("instances", "nodes", "cpu", "mem", "disks")
#: the ``settings`` key of the default limits an admin sets for everyone
DEFAULT_KEY = "default_quota"


@dataclasses.dataclass(frozen=True)
class Usage:
    """An amount of every resource a quota limits: what a user holds, or what a request adds
    (a launch adds one instance and its nodes; a resize adds nodes, or removes them with
    negative numbers)."""

    instances: int = 0
    nodes: int = 0
    cpu: int = 0
    mem: int = 0
    disks: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def held_columns(self) -> dict[str, Any]:
        """The ``held_*`` columns of an instance that holds this (for its INSERT or an
        UPDATE)."""
        return {
            "held_nodes": self.nodes,
            "held_cpu": self.cpu,
            "held_mem": self.mem,
            "held_disks": self.disks,
        }

    @classmethod
    def held_by_instance(cls, instance: Instance) -> Usage:
        """What ``instance`` holds while it is live: itself and what it recorded."""
        return cls(
            1, instance.held_nodes, instance.held_cpu, instance.held_mem, instance.held_disks
        )


def usage_of_spec(spec: dict, *, instances: int = 1) -> Usage:
    """What the nodes of a rendered, validated spec ask for (one instance by default)."""
    return Usage(instances=instances, **node_totals((spec.get("nodes") or {}).values()))


#: what ``:user_id``'s live instances hold, as one row of Usage's fields (the live statuses
#: written into it, states.py's constants: a launch's transaction runs it as compiled, on the
#: driver)
HELD_BY = select(
    func.count(Instance.id),
    func.coalesce(func.sum(Instance.held_nodes), 0),
    func.coalesce(func.sum(Instance.held_cpu), 0),
    func.coalesce(func.sum(Instance.held_mem), 0),
    func.coalesce(func.sum(Instance.held_disks), 0),
).where(
    Instance.user_id == bindparam("user_id"),
    Instance.status.in_([literal_column(f"'{status}'") for status in states.LIVE]),
)


def held_by(session: Session, user_id: int) -> Usage:
    """What ``user_id``'s live instances hold."""
    return usage_of_row(session.execute(HELD_BY, {"user_id": user_id}).one())


def usage_of_row(row: Any) -> Usage:
    """A Usage from a row of HELD_BY."""
    return Usage(*(int(v) for v in row))


def config_defaults(config: Config) -> dict[str, int | None]:
    return {r: getattr(config, f"DEFAULT_QUOTA_{r.upper()}") for r in RESOURCES}


def merged_limits(config: Config, default: dict | None, own: dict | None) -> dict[str, int | None]:
    """A user's limits: their ``own`` quota over the admin's ``default`` over the config's."""
    return {**config_defaults(config), **(default or {}), **(own or {})}


def _stored_default(session: Session) -> dict | None:
    stored = session.get(Setting, DEFAULT_KEY)
    return stored.value if stored is not None else None


def default_limits(session: Session, config: Config) -> dict[str, int | None]:
    """The limits of a user for whom no admin set any: the admin's default, else config."""
    return merged_limits(config, _stored_default(session), None)


def limits_of(session: Session, config: Config, user: User) -> dict[str, int | None]:
    return merged_limits(config, _stored_default(session), user.quota)


def unlimited(limits: dict[str, int | None]) -> bool:
    return all(limit is None for limit in limits.values())


_USERS, _SETTINGS = (cast(Table, model.__table__) for model in (User, Setting))
#: a user's own limits and the default for everyone, in one statement (``:user_id``), as a
#: row (no ORM object: nothing of the user changes here)
LIMITS_OF_USER = select(
    _USERS.c.quota,
    select(_SETTINGS.c.value)
    .where(_SETTINGS.c.key == DEFAULT_KEY)
    .scalar_subquery()
    .label("default"),
).where(_USERS.c.id == bindparam("user_id"))
#: the same under a share lock on the user's row (the settings row is not locked: an
#: admin's change of the default is never held off by a launch, nor was it before)
LIMITS_OF_USER_SHARED = LIMITS_OF_USER.with_for_update(read=True, of=_USERS)
#: the same under the user's row lock
LIMITS_OF_USER_LOCKED = LIMITS_OF_USER.with_for_update(of=_USERS)


def limits_of_row(config: Config, row: Row | tuple) -> dict[str, int | None]:
    """``limits_of`` from a row of LIMITS_OF_USER (its quota, then the default)."""
    quota, default = row
    return merged_limits(config, default, quota)


def excesses(
    session: Session, config: Config, user_id: int, added: Usage, *, lock: bool = True
) -> list[dict[str, Any]]:
    """Every resource that ``added`` would take ``user_id`` over, as ``{"resource",
    "requested", "used", "limit"}`` (empty: it fits). With ``lock``, the user's row stays
    locked until the caller's transaction ends: commit what was checked in it.

    Each read takes the user's limits and the default ones in one statement (a launch's
    check is two statements for a user without limits, three with)."""
    params = {"user_id": user_id}
    if lock:
        hint = session.execute(LIMITS_OF_USER, params).first()
        if hint is not None and unlimited(limits_of_row(config, hint)):
            # Nothing to count, so this user's launches need not wait for one another: a
            # share lock only holds off a change of their quota (an UPDATE of the row) until
            # this transaction ends. Read again under it, the quota may have just changed.
            shared = session.execute(LIMITS_OF_USER_SHARED, params).first()
            if shared is not None and unlimited(limits_of_row(config, shared)):
                return []
            # Now limited: counted under the exclusive lock. (Should two launches of the user
            # both get here, the database ends one of them as a deadlock; nothing is taken.)
    row = session.execute(LIMITS_OF_USER_LOCKED if lock else LIMITS_OF_USER, params).first()
    if row is None:
        raise NotFound(f"user {user_id} not found")
    limits = limits_of_row(config, row)
    return over(limits, held_by(session, user_id), added)


def over(limits: dict[str, int | None], used: Usage, added: Usage) -> list[dict[str, Any]]:
    """Every resource that ``added`` would take a user who holds ``used`` over ``limits``,
    as ``excesses`` answers."""
    holding = used.as_dict()
    found = []
    for resource, requested in added.as_dict().items():
        limit = limits[resource]
        if limit is not None and requested > 0 and holding[resource] + requested > limit:
            found.append(
                {
                    "resource": resource,
                    "requested": requested,
                    "used": holding[resource],
                    "limit": limit,
                }
            )
    return found


def enforce(session: Session, config: Config, user_id: int, added: Usage) -> None:
    """Raise QuotaExceeded (403, every dimension over) unless ``added`` fits; lock as
    ``excesses`` does."""
    found = excesses(session, config, user_id, added)
    if found:
        raise QuotaExceeded(found)


def report(session: Session, config: Config, user: User) -> dict[str, dict[str, int | None]]:
    """Per resource, the user's ``limit`` (None: unlimited) and what they ``used``."""
    limits = limits_of(session, config, user)
    used = held_by(session, user.id).as_dict()
    return {r: {"limit": limits[r], "used": used[r]} for r in RESOURCES}


def _merge(current: dict | None, changes: dict) -> dict:
    """``changes`` over ``current``: a key given replaces (null: unlimited), one left out stays."""
    unknown = sorted(set(changes) - set(RESOURCES))
    if unknown:  # the API's schema refuses these first; this guards other callers
        raise ValidationError([{"field": k, "message": "unknown field"} for k in unknown])
    return {**(current or {}), **changes}


def set_user_quota(rt: Runtime, actor: str, name: str, changes: dict) -> dict:
    """Set some of ``name``'s limits (``changes`` checked by the caller: ``QuotaIn``); the
    answer is the user's limits and usage."""
    with rt.db.session() as session:
        user = session.scalar(select(User).where(User.name == name).with_for_update())
        if user is None:
            raise NotFound(f"user {name} not found")
        user.quota = _merge(user.quota, changes)
        audit.record(session, actor, "quota.changed", f"user:{name}", changes=changes)
        answer = report(session, rt.config, user)
        session.commit()
        return answer


def get_default_quota(rt: Runtime) -> dict[str, int | None]:
    with rt.db.session() as session:
        return default_limits(session, rt.config)


def set_default_quota(rt: Runtime, actor: str, changes: dict) -> dict[str, int | None]:
    """Set some of the default limits for everyone (over the PAAS_DEFAULT_QUOTA_* ones)."""
    with rt.db.session() as session:
        stored = session.get(Setting, DEFAULT_KEY, with_for_update=True)
        if stored is None:
            stored = Setting(key=DEFAULT_KEY, value={})
            session.add(stored)
        stored.value = _merge(stored.value, changes)
        audit.record(session, actor, "quota.default_changed", "quota:default", changes=changes)
        session.flush()
        answer = default_limits(session, rt.config)
        session.commit()
        return answer
