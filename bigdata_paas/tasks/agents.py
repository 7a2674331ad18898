"""The pipeline's side of the host agents: their reports, recorded by a pipeline worker.

A report comes from a host that holds no secret, so it is checked, never trusted: anything
that is not of the expected shape is dropped with a log line.
"""

from __future__ import annotations

from celery import shared_task
from flask import current_app

from bigdata_paas.errors import Unavailable
from bigdata_paas.messaging.publish import publish_to_agent
from bigdata_paas.operations.lifecycle import agents
from bigdata_paas.tasks.pipeline import RETRY


def _strings(*values) -> bool:
    return all(isinstance(v, str) and 0 < len(v) <= 200 for v in values)


@shared_task(name="pipeline.node_report", **RETRY)
def node_report(host: str, instance_id: str, node: str, state: str, detail=None) -> str:
    """Record what an agent says of one node (running, failed, stopped)."""
    if not _strings(host, instance_id, node, state):
        return "ignored"
    rt = current_app.extensions["paas"]
    return agents.record_node(rt, host, instance_id, node, state, detail or {})


@shared_task(name="pipeline.agent_report", **RETRY)
def agent_report(host: str, report=None) -> str:
    """Record an agent's heartbeat and reconcile the nodes it runs."""
    if not _strings(host):
        return "ignored"
    return agents.record_report(current_app.extensions["paas"], host, report or {})


@shared_task(name="pipeline.greet_agent", **RETRY)
def greet_agent(host: str) -> str:
    """Ask the agent of a host just added to report now (it reported to no host so far); the
    order expires unrun after HOST_DOWN_AFTER when no agent runs there."""
    if not _strings(host):
        return "ignored"
    rt = current_app.extensions["paas"]
    try:
        publish_to_agent(
            rt.celery,
            rt.config.host_queue(host),
            "agent.report",
            expires=rt.config.HOST_DOWN_AFTER,
        )
    except Unavailable:
        return "broker unreachable"  # its next heartbeat comes anyway
    return "asked"
