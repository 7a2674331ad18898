"""Resize a running instance with new options: diff the specs, place what joins, hand over.

``PATCH /instances/{id}`` lands here. Everything that can refuse a resize does so before
anything changes: the status (only ``running``, one resize at a time: the compare-and-set
``running -> updating`` settles two at once), the new options, a staying node that would
change, an orquestrator that lacks the action, and capacity for the joining nodes (a resize
does not queue: ``no_capacity`` at once). Then, in one transaction under the placement lock,
the joining nodes are placed as a gang beside the instance's nodes and the instance goes
``updating`` with the resize it is doing; the orquestrator worker does the rest
(lifecycle/resizing.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bigdata_paas import states
from bigdata_paas.errors import Conflict, NoCapacity, PaasError, ResizeRefused
from bigdata_paas.messaging.publish import publish_resize
from bigdata_paas.models import Instance, Node, Service
from bigdata_paas.operations import allocations, quotas
from bigdata_paas.operations.instances import dry_render, get_instance
from bigdata_paas.operations.lifecycle.resizing import undo_placed
from bigdata_paas.operations.lifecycle.transitions import advance, note
from bigdata_paas.operations.users import Caller
from bigdata_paas.orquestrator.actions import declared_actions, declared_changes
from bigdata_paas.placement import NoFit, Placement, place
from bigdata_paas.rendering import node_roles
from bigdata_paas.rendering.spec_diff import SpecDiff, diff_specs, resize_adds
from bigdata_paas.runtime import Runtime


def resize_instance(
    rt: Runtime,
    user: Caller,
    instance_id: str,
    values: dict,
    remove: Sequence[str] = (),
    *,
    dry_run: bool = False,
) -> dict:
    """Resize the instance to the spec ``values`` (merged over its options) renders; with
    ``dry_run``, say what would change and where the joining nodes would go, changing
    nothing. Answers the instance, ``updating``."""
    with rt.db.session() as session:
        instance = get_instance(session, user, instance_id)
        options, merged, diff = _diff(rt, session, instance, values, remove)
        if dry_run:
            answer = _preview(rt, session, instance, diff)
            session.rollback()
            return answer
        _begin(rt, session, instance, options, merged, diff)
        session.commit()
        session.expire_all()  # the status and the joining nodes, as committed
        answer = instance.to_dict()
    try:
        publish_resize(rt.celery, instance_id)
    except PaasError:
        undo_placed(rt, instance_id, "resize not started: broker unreachable")
        raise
    return answer


def _diff(
    rt: Runtime, session: Session, instance: Instance, values: dict, remove: Sequence[str]
) -> tuple[dict, dict, SpecDiff]:
    """Check the instance may be resized and render its new spec: (options, merged, diff)."""
    if instance.status not in (states.RUNNING,):
        raise Conflict(
            f"instance {instance.id} is {instance.status}; only a running instance can be resized"
        )
    if instance.spec is None:  # a running instance has its spec
        raise Conflict(f"instance {instance.id} has no spec; it cannot be resized")
    service = session.get(Service, instance.service_id) if instance.service_id else None
    if service is None or service.missing:
        raise Conflict(
            f"service {instance.service_name}/{instance.service_version} is gone or not "
            "complete; its instances cannot be resized"
        )
    options = {**instance.options, **values}
    owner = Caller(id=instance.user_id, name=instance.user.name, role="user")
    merged, spec = dry_render(rt, service, options, owner, instance.id)
    diff = diff_specs(instance.spec, spec, remove, declared_changes(service.orquestrator))
    if diff.action not in declared_actions(service.orquestrator):
        raise ResizeRefused(
            f"the orquestrator of {service.name}/{service.version} does not declare the "
            f"{diff.action} action (a line '# paas-actions: scale-out decommission' near its "
            "top, see docs/orquestrators.md); it cannot be resized to "
            f"{diff.describe()}",
            field="orquestrator",
        )
    return options, merged, diff


def _place_joining(
    rt: Runtime, session: Session, instance: Instance, diff: SpecDiff, *, keep: bool = False
) -> Placement:
    """Place the joining nodes as a gang beside the instance's nodes (anti-affinity counts
    them) on the free capacity as committed; raises NoFit. ``keep``: for real, under the
    placement lock, through a scheduler as the queue places."""
    roles = node_roles(diff.spec)
    beside: dict[str, set[str]] = {}
    for name, placed in session.execute(
        select(Node.name, Node.placement).where(Node.instance_id == instance.id)
    ):
        if placed and placed.get("host"):
            beside.setdefault(placed["host"], set()).update(roles.get(name, ()))
    demands = [d for d in allocations.node_demands(diff.spec) if d.name in diff.added]
    strategy = diff.spec.get("placement_strategy", rt.config.PLACEMENT_STRATEGY)
    anti_affinity = diff.spec.get("anti_affinity", "soft")
    if keep:
        scheduler = allocations.scheduler(session, strategy)
        return scheduler.place(demands, anti_affinity=anti_affinity, beside=beside)
    return place(
        demands,
        allocations.load_hosts(session),
        allocations.load_networks(session),
        strategy=strategy,
        anti_affinity=anti_affinity,
        beside=beside,
    )


def _placement_rows(result: Placement) -> list[dict]:
    return [
        {
            "node": p.node,
            "host": p.host,
            "disks": {d: hd.name for d, hd in p.disks.items()},
            "addresses": {dev: a.address for dev, a in p.nics.items()},
        }
        for p in result.nodes.values()
    ]


def _preview(rt: Runtime, session: Session, instance: Instance, diff: SpecDiff) -> dict:
    """What the resize would do: the nodes that join or leave, and where the joining go."""
    body: dict[str, Any] = {
        "id": instance.id,
        "action": diff.action,
        "added": list(diff.added),
        "removed": list(diff.removed),
        "adds": resize_adds(diff),
        "fits": True,
    }
    exceeded = quotas.excesses(
        session, rt.config, instance.user_id, quotas.Usage(**resize_adds(diff)), lock=False
    )
    body["quota"] = {"allowed": not exceeded, "exceeded": exceeded}
    if diff.added:
        try:
            body["placement"] = _placement_rows(_place_joining(rt, session, instance, diff))
        except NoFit as exc:
            body.update(
                fits=False,
                reason=str(exc),
                shortages=[dataclasses.asdict(s) for s in exc.shortages],
            )
    return body


def _begin(
    rt: Runtime,
    session: Session,
    instance: Instance,
    options: dict,
    merged: dict,
    diff: SpecDiff,
) -> None:
    """In this transaction: running -> updating, the joining nodes placed and allocated."""
    allocations.lock_placement(session)  # first, as placements do
    plan = {
        "action": diff.action,
        "options": options,
        "merged_options": merged,
        "spec": diff.spec,
        "added": list(diff.added),
        "removed": list(diff.removed),
        "phase": "accepted",
    }
    # Over quota is refused before anything changes; joining nodes count from now on (they
    # hold their allocations), leaving nodes until they are gone.
    quotas.enforce(session, rt.config, instance.user_id, quotas.Usage(**resize_adds(diff)))
    held = quotas.usage_of_spec(diff.spec).held_columns() if diff.added else {}
    if not advance(
        session,
        instance.id,
        "resize",
        states.UPDATING,
        f"resize requested: {diff.describe()}",
        source=states.RUNNING,
        resize=plan,
        heartbeat_at=None,
        **held,
    ):
        raise Conflict(f"instance {instance.id} changed status (another resize?); try again")
    if diff.removed:
        hosts: dict[str, dict | None] = dict(
            session.execute(
                select(Node.name, Node.placement).where(
                    Node.instance_id == instance.id, Node.name.in_(list(diff.removed))
                )
            ).all()
        )
        for name in diff.removed:
            where = (hosts.get(name) or {}).get("host")
            message = f"node {name} leaves (on host {where}): decommission first"
            note(session, instance.id, "resize", states.UPDATING, message)
        return
    try:
        result = _place_joining(rt, session, instance, diff, keep=True)
    except NoFit as exc:
        session.rollback()
        raise NoCapacity(
            f"the new nodes of instance {instance.id} cannot be placed now: {exc}; nothing changed",
            details={"shortages": [dataclasses.asdict(s) for s in exc.shortages]},
        ) from None
    session.add_all(
        Node(instance_id=instance.id, name=name, cpu=node["cpu"], mem=node["mem"], spec=node)
        for name, node in diff.added.items()
    )
    session.flush()
    try:
        allocations.commit_placement(session, instance.id, diff.spec, result)
    except allocations.AllocationConflict as exc:
        session.rollback()
        raise Conflict(f"the placement changed meanwhile ({exc}); try again") from None
    for spot in result.nodes.values():
        note(
            session,
            instance.id,
            "resize",
            states.UPDATING,
            f"node {spot.node} joins on host {spot.host}",
        )
