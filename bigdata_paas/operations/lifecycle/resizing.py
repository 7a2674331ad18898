"""The resize step: configure the joining or leaving nodes, or roll back to the previous spec.

The API accepted the resize (operations/resize.py): the instance is ``updating`` and holds the
resize it is doing in ``instances.resize`` (the new options and spec, the nodes that join or
leave, and ``phase``). This step, on an orquestrator worker, claims it through the heartbeat
as destroy does, then:

- scale-out: start the joining nodes on their hosts' agents, run the orquestrator's
  ``scale-out``, wait for every node's check ports; then the new spec is the instance's;
- decommission: run the orquestrator's ``decommission`` with the leaving nodes still running
  (``phase`` becomes ``decommissioned``), then stop them and release what they held.

Anything that fails before the new spec is the instance's rolls back: the joining nodes are
stopped, their allocations released and their rows removed, and the instance runs again on
its previous spec, with an event saying what failed. A worker lost mid-resize (the sweep
publishes the step again once its heartbeat is gone) finds ``phase`` past ``accepted``: it
rolls back, or finishes a decommission that completed.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from bigdata_paas import states
from bigdata_paas.models import Instance, Node
from bigdata_paas.operations import allocations, quotas
from bigdata_paas.operations.lifecycle.commands import instance_document, run_orquestrator
from bigdata_paas.operations.lifecycle.nodes import claim_nodes, start_nodes, stop_nodes
from bigdata_paas.operations.lifecycle.running import check_health
from bigdata_paas.operations.lifecycle.transitions import advance, claim_work, note
from bigdata_paas.runtime import Runtime

#: the files a resize action gets besides PAAS_INSTANCE_FILE (the new spec): the spec before
#: the resize, and the nodes that join or leave (docs/orquestrators.md)
PREVIOUS_FILE = "PAAS_PREVIOUS_INSTANCE_FILE"
CHANGED_FILE = "PAAS_CHANGED_NODES_FILE"


def resize(rt: Runtime, instance_id: str) -> str:
    """Do the resize an ``updating`` instance holds, or roll it back; the status it ends in."""
    plan = _claim(rt, instance_id)
    if plan is None:
        return "skipped"
    if plan["phase"] == "decommissioned":
        return _finish_scale_in(rt, instance_id, plan, "the decommission had completed")
    if plan["phase"] != "accepted":
        return roll_back(
            rt, instance_id, plan, "the worker doing the resize stopped before it ended"
        )
    if plan["action"] == "scale-out":
        return _scale_out(rt, instance_id, plan)
    return _scale_in(rt, instance_id, plan)


def _claim(rt: Runtime, instance_id: str) -> dict | None:
    """Claim the resize (no live heartbeat: nobody else does it) and mark it begun; the
    resize as it was, or None when it is not this step's to do."""
    with rt.db.session() as session:
        claimed = claim_work(session, instance_id, states.UPDATING, rt.config.HEARTBEAT_TIMEOUT)
        if not claimed:
            session.commit()
            return None
        instance = session.get_one(Instance, instance_id)
        if instance.resize is None:  # an updating instance has its resize recorded
            raise RuntimeError(f"instance {instance_id} is updating without a resize")
        plan = dict(instance.resize)
        if plan["phase"] == "accepted":
            instance.resize = {**plan, "phase": "began"}
        session.commit()
    return plan


def _documents(rt: Runtime, instance_id: str, plan: dict) -> tuple[dict, dict]:
    """The instance file of the action (the new spec) and its extra files (the previous spec,
    the nodes that join or leave), as the orquestrator reads them."""
    with rt.db.session() as session:
        whole = instance_document(session, session.get_one(Instance, instance_id))
        session.commit()
    added, removed = set(plan["added"]), set(plan["removed"])
    previous = {**whole, "nodes": [n for n in whole["nodes"] if n.get("name") not in added]}
    new = {
        **whole,
        "options": plan["merged_options"],
        "services": plan["spec"].get("services", {}),
        "nodes": [n for n in whole["nodes"] if n.get("name") not in removed],
    }
    changed = [n for n in whole["nodes"] if n.get("name") in added | removed]
    return new, {PREVIOUS_FILE: previous, CHANGED_FILE: changed}


def _run_action(rt: Runtime, instance_id: str, plan: dict) -> tuple[bool, str]:
    document, files = _documents(rt, instance_id, plan)
    names = plan["added"] or plan["removed"]
    try:
        return run_orquestrator(
            rt,
            instance_id,
            plan["action"],
            keep_heartbeat=True,
            document=document,
            files=files,
            env={"PAAS_CHANGED_NODES": ",".join(names)},
        )
    except (OSError, RuntimeError) as exc:
        return False, f"could not run the orquestrator's {plan['action']}: {exc}"


def _scale_out(rt: Runtime, instance_id: str, plan: dict) -> str:
    added = set(plan["added"])
    with rt.db.session() as session:
        orders = claim_nodes(session, instance_id, only=added)
        if orders:
            hosts = ", ".join(sorted({host for host, _placed, _nets in orders}))
            note(
                session,
                instance_id,
                "resize",
                states.UPDATING,
                f"starting {len(orders)} new node(s) on the agents of {hosts}",
            )
        session.commit()
    ok, how = start_nodes(rt, instance_id, orders) if orders else (True, "")
    if ok:
        ok, ran = _run_action(rt, instance_id, plan)
        how = f"{how}; {ran}" if how else ran
    if ok:
        ok, health = check_health(rt, instance_id)
        how = f"{how}; {health}"
    if not ok:
        return roll_back(rt, instance_id, plan, f"scale-out failed: {how}")
    with rt.db.session() as session:
        moved = _commit_spec(
            session, instance_id, plan, f"resized: added {', '.join(plan['added'])}; {how}"
        )
        session.commit()
    return states.RUNNING if moved else "skipped"


def _scale_in(rt: Runtime, instance_id: str, plan: dict) -> str:
    ok, how = _run_action(rt, instance_id, plan)
    if not ok:
        return roll_back(rt, instance_id, plan, f"decommission failed: {how}")
    with rt.db.session() as session:
        session.execute(
            update(Instance)
            .where(Instance.id == instance_id, Instance.status == states.UPDATING)
            .values(resize={**plan, "phase": "decommissioned"})
            .execution_options(synchronize_session=False)
        )
        note(session, instance_id, "resize", states.UPDATING, how)
        session.commit()
    return _finish_scale_in(rt, instance_id, plan, how)


def _finish_scale_in(rt: Runtime, instance_id: str, plan: dict, how: str) -> str:
    """The leaving nodes were decommissioned: stop them, release them, forget them."""
    leaving = set(plan["removed"])
    stopped = stop_nodes(rt, instance_id, only=leaving)
    with rt.db.session() as session:
        allocations.lock_placement(session)  # first, as placements do: releases take it too
        hosts: dict[str, dict | None] = dict(
            session.execute(
                select(Node.name, Node.placement).where(
                    Node.instance_id == instance_id, Node.name.in_(list(leaving))
                )
            ).all()
        )
        allocations.release(session, instance_id, leaving)
        _forget(session, instance_id, leaving)
        for name in plan["removed"]:
            host = (hosts.get(name) or {}).get("host")
            note(session, instance_id, "resize", states.UPDATING, f"node {name} removed ({host})")
        text = f"resized: removed {', '.join(plan['removed'])}"
        # one transaction: the nodes are gone exactly when the new spec is the instance's
        moved = _commit_spec(session, instance_id, plan, f"{text}; {stopped}" if stopped else text)
        session.commit()
    return states.RUNNING if moved else "skipped"


def _commit_spec(session, instance_id: str, plan: dict, message: str) -> bool:
    """The new spec is the instance's: running again on it (the staying nodes with the
    fields the service let the resize change)."""
    nodes = plan["spec"]["nodes"]
    for node in session.scalars(select(Node).where(Node.instance_id == instance_id)):
        if node.name in nodes and node.name not in plan["added"] and node.spec != nodes[node.name]:
            node.spec = nodes[node.name]
    return advance(
        session,
        instance_id,
        "resize",
        states.RUNNING,
        message[:4000],
        source=states.UPDATING,
        options=plan["options"],
        merged_options=plan["merged_options"],
        spec=plan["spec"],
        resize=None,
        heartbeat_at=None,
        **quotas.usage_of_spec(plan["spec"]).held_columns(),
    )


def _forget(session, instance_id: str, names: set[str]) -> None:
    if names:
        session.execute(
            delete(Node)
            .where(Node.instance_id == instance_id, Node.name.in_(list(names)))
            .execution_options(synchronize_session=False)
        )


def abandon(rt: Runtime, instance_id: str, why: str) -> str:
    """Roll back the resize an ``updating`` instance holds (the step crashed)."""
    with rt.db.session() as session:
        plan = session.scalar(select(Instance.resize).where(Instance.id == instance_id))
        session.commit()
    return roll_back(rt, instance_id, plan, why) if plan else "skipped"


def roll_back(rt: Runtime, instance_id: str, plan: dict, why: str) -> str:
    """Back to the previous spec: stop the joining nodes that started, then undo them."""
    stopped = stop_nodes(rt, instance_id, only=set(plan["added"])) if plan["added"] else ""
    reason = f"{why} ({stopped})" if stopped else why
    return undo_placed(rt, instance_id, reason)


def undo_placed(rt: Runtime, instance_id: str, why: str) -> str:
    """Release and remove the joining nodes of an ``updating`` instance (none runs any more)
    and run it again on its previous spec, saying why."""
    with rt.db.session() as session:
        allocations.lock_placement(session)  # first, as placements do: releases take it too
        instance = session.get(Instance, instance_id)
        if instance is None or instance.status != states.UPDATING or not instance.resize:
            session.commit()
            return "skipped"
        added = set(instance.resize["added"])
        if added:
            allocations.release(session, instance_id, added)
            _forget(session, instance_id, added)
        advance(
            session,
            instance_id,
            "resize",
            states.RUNNING,
            f"resize rolled back to the previous spec: {why}"[:4000],
            source=states.UPDATING,
            resize=None,
            heartbeat_at=None,
            **quotas.usage_of_spec(instance.spec or {}).held_columns(),
        )
        session.commit()
    return states.RUNNING
