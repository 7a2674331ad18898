"""Running an orquestrator command for an instance: its document, logs and heartbeat."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, joinedload

from bigdata_paas.models import Instance, LogLine, Node, Service, utcnow
from bigdata_paas.orquestrator import ScriptLimits, run_script
from bigdata_paas.runtime import Runtime


def instance_document(session: Session, instance: Instance) -> dict:
    """The placed instance as the orquestrator reads it from PAAS_INSTANCE_FILE."""
    nodes = session.execute(_NODES_OF_INSTANCE, {"instance_id": instance.id})
    return {
        "id": instance.id,
        "name": instance.name,
        "service": instance.service_name,
        "version": instance.service_version,
        "user": instance.user.name,
        "options": instance.merged_options or {},
        "nodes": [
            {**(placement or {"name": name, **spec}), "runtime": runtime}
            for name, spec, placement, runtime in nodes
        ],
        "services": (instance.spec or {}).get("services", {}),
    }


# Columns, not ORM objects: the document is read before every command of every instance.
_NODES_OF_INSTANCE = (
    select(Node.name, Node.spec, Node.placement, Node.runtime)
    .where(Node.instance_id == bindparam("instance_id"))
    .order_by(Node.id)
)
_SCRIPT_OF_SERVICE = select(Service.orquestrator, Service.orquestrator_timeout).where(
    Service.id == bindparam("service_id")
)


@dataclass(frozen=True)
class Job:
    """What a command of an instance's orquestrator needs, read in one transaction."""

    script: str | None
    document: dict
    timeout: float


def command_job(rt: Runtime, session: Session, instance_id: str) -> Job:
    """Read the service's script and time limit and the instance's document."""
    # the owner with the instance (one query), the service's script alone (not its template)
    instance = session.get_one(Instance, instance_id, options=[joinedload(Instance.user)])
    script, timeout = session.execute(
        _SCRIPT_OF_SERVICE, {"service_id": instance.service_id}
    ).first() or (None, None)
    return Job(
        script=script,
        document=instance_document(session, instance),
        timeout=timeout or rt.config.ORQUESTRATOR_TIMEOUT,
    )


class LogWriter:
    """Store orquestrator output lines in batches, so a chatty script costs few commits."""

    def __init__(self, rt: Runtime, instance_id: str, command: str) -> None:
        self.rt, self.instance_id, self.command = rt, instance_id, command
        self.buffer: list[LogLine] = []
        self.flushed_at = time.monotonic()

    def __call__(self, stream: str, line: str) -> None:
        self.buffer.append(
            LogLine(
                instance_id=self.instance_id, command=self.command, stream=stream, line=line[:8000]
            )
        )
        if len(self.buffer) >= 200 or time.monotonic() - self.flushed_at > 0.5:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            with self.rt.db.session() as session:
                session.add_all(self.buffer)
                session.commit()
            self.buffer = []
        self.flushed_at = time.monotonic()


def run_orquestrator(
    rt: Runtime,
    instance_id: str,
    command: str,
    *,
    keep_heartbeat: bool = False,
    document: dict | None = None,
    files: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
    job: Job | None = None,
) -> tuple[bool, str]:
    """Run the service's orquestrator ``command`` for the instance; (ok, how it ended).

    The heartbeat beats while the command runs and is cleared when it ends, unless
    ``keep_heartbeat``: the caller's step goes on, and clears it itself. ``document``
    replaces the instance as stored (a resize hands on the spec it is making); ``files`` and
    ``env`` go to the script besides the instance's own (orquestrator/runner.py). ``job``:
    the script and document as the caller read them in its own transaction.
    """
    if job is None:
        with rt.db.session() as session:
            job = command_job(rt, session, instance_id)
            session.commit()
    if not job.script:
        return False, "the service has no orquestrator any more"
    script, timeout = job.script, job.timeout
    document = document or job.document
    writer = LogWriter(rt, instance_id, command)
    result = run_script(
        script,
        command,
        document,
        rt.config.work_path / instance_id,
        env={
            "PAAS_INSTANCE_ID": instance_id,
            "PAAS_SERVICE": document["service"],
            "PAAS_VERSION": document["version"],
            "PAAS_USER": document["user"],
            "PAAS_INSTANCE_NAME": document["name"],
            **(env or {}),
        },
        limits=ScriptLimits(
            timeout=timeout,
            max_output=rt.config.ORQUESTRATOR_MAX_OUTPUT,
            max_memory=rt.config.ORQUESTRATOR_MAX_MEMORY_MB * 1024 * 1024,
            max_processes=rt.config.ORQUESTRATOR_MAX_PROCESSES,
        ),
        on_output=writer,
        on_tick=Heartbeat(rt, instance_id),
        files=files,
    )
    writer.flush()
    if not keep_heartbeat:
        clear_heartbeat(rt, instance_id)
    return result.ok, result.describe(command)


def clear_heartbeat(rt: Runtime, instance_id: str) -> None:
    """No command runs any more: a destroy may claim the instance at once."""
    with rt.db.session() as session:
        session.execute(
            update(Instance)
            .where(Instance.id == instance_id)
            .values(heartbeat_at=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()


class Heartbeat:
    """Refresh the instance's heartbeat every HEARTBEAT_INTERVAL while a command runs."""

    def __init__(self, rt: Runtime, instance_id: str) -> None:
        self.rt, self.instance_id = rt, instance_id
        self.beaten_at = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.beaten_at < self.rt.config.HEARTBEAT_INTERVAL:
            return
        self.beaten_at = time.monotonic()
        with self.rt.db.session() as session:
            session.execute(
                update(Instance)
                .where(Instance.id == self.instance_id)
                .values(heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            session.commit()
