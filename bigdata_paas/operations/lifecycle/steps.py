"""The first steps: prepare (render and store the nodes), submit (could it ever fit), queue."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from bigdata_paas import states
from bigdata_paas.errors import PaasError
from bigdata_paas.models import Instance, Node, Service, User, utcnow
from bigdata_paas.operations import allocations
from bigdata_paas.operations.lifecycle.transitions import advance, fail
from bigdata_paas.operations.services import render_instance
from bigdata_paas.rendering import validate_spec
from bigdata_paas.runtime import Runtime


def prepare(rt: Runtime, instance_id: str) -> str:
    """Store the nodes of the spec the launch rendered; render it (in the sandbox) and validate
    it first when the launch's render no longer holds: the operator changed the service
    since (its template or options document), or the instance has none (retried from a
    failed prepare)."""
    with rt.db.session() as session:
        instance = session.get(Instance, instance_id)
        if instance is None or instance.status != states.STEPS["prepare"].source:
            return "skipped"
        changed = session.scalar(
            _SERVICE_CHANGED, {"id": instance.service_id, "since": instance.created_at}
        )
        if instance.spec is not None and instance.merged_options is not None and changed is False:
            # The launch rendered and validated it, with this instance's id, from the
            # service as it still is: it is stored already.
            return _store_nodes(session, instance_id, instance.spec)
        service = session.get(Service, instance.service_id) if instance.service_id else None
        user = session.get_one(User, instance.user_id)
        job: dict[str, Any] = {
            "options": instance.options,
            "user": user.name,
            "service": instance.service_name,
            "version": instance.service_version,
            "doc": service.options if service else None,
            "template": service.template if service else None,
            "format": service.template_format if service else "json",
        }
        session.commit()
    try:
        if not job["template"] or job["doc"] is None:
            raise PaasError("the service has no template or options any more")
        merged, rendered = render_instance(
            rt,
            job["template"],
            job["format"],
            job["doc"],
            job["options"],
            instance_id=instance_id,
            user=job["user"],
            service=job["service"],
            version=job["version"],
        )
        spec = validate_spec(rendered, max_nodes=rt.config.MAX_NODES)
    except PaasError as exc:
        fail(rt, instance_id, "prepare", exc.message)
        return "failed"
    with rt.db.session() as session:
        return _store_nodes(session, instance_id, spec, {"merged_options": merged, "spec": spec})


#: None: the service is gone; False: it is as it was at ``since``
_SERVICE_CHANGED = select(
    Service.updated_at > bindparam("since", type_=Service.updated_at.type)
).where(Service.id == bindparam("id"))
_INSERT_NODES = insert(cast(Table, Node.__table__))
_STATUS_AND_SPEC = select(Instance.status, Instance.spec).where(Instance.id == bindparam("id"))


def _store_nodes(
    session: Session, instance_id: str, spec: dict, rendered: dict | None = None
) -> str:
    """Move the instance to prepared with one row per node of ``spec`` (and the ``rendered``
    spec and merged options, when prepare rendered them: the launch's are stored already);
    commit."""
    if not advance(
        session,
        instance_id,
        "prepare",
        states.PREPARED,
        f"template rendered: {len(spec['nodes'])} node(s)",
        **(rendered or {}),
    ):
        session.commit()
        return "skipped"
    session.execute(
        _INSERT_NODES,
        [
            {"instance_id": instance_id, "name": name, "cpu": n["cpu"], "mem": n["mem"], "spec": n}
            for name, n in spec["nodes"].items()
        ],
    )
    session.commit()
    return states.PREPARED


def submit(rt: Runtime, instance_id: str) -> str:
    """Check that the instance could ever fit the inventory, then hand it to the scheduler."""
    with rt.db.session() as session:
        row = session.execute(_STATUS_AND_SPEC, {"id": instance_id}).first()
        if row is None or row.status != states.STEPS["submit"].source:
            return "skipped"
        spec = row.spec
        if spec is None:  # prepare stores it as the instance moves to prepared
            raise RuntimeError(f"instance {instance_id} is {row.status} without a spec")
        reasons, hosts = allocations.check_feasible(session, spec)
        # With no host at all the instance waits for the first one instead of failing.
        if reasons and hosts:
            session.commit()
            fail(
                rt,
                instance_id,
                "submit",
                "cannot fit the inventory even when it is empty: " + "; ".join(reasons),
            )
            return "failed"
        cpu = sum(n["cpu"] for n in spec["nodes"].values())
        mem = sum(n["mem"] for n in spec["nodes"].values())
        advance(
            session,
            instance_id,
            "submit",
            states.SUBMITTED,
            f"{len(spec['nodes'])} node(s), {cpu} cpu, {mem} MB",
        )
        session.commit()
    return states.SUBMITTED


def queue(rt: Runtime, instance_id: str) -> str:
    """Take the instance's place in the queue (submission order)."""
    with rt.db.session() as session:
        moved = advance(
            session,
            instance_id,
            "queue",
            states.QUEUED,
            "waiting for capacity",
            queued_at=utcnow(),
        )
        session.commit()
    return states.QUEUED if moved else "skipped"
