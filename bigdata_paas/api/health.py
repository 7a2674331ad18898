"""Liveness and readiness of the web process, the database and the broker: the probes.

No auth and no secrets: an orchestrator (Kubernetes, systemd, a load balancer) calls them
without a token, and they say only which part is down."""

from __future__ import annotations

from bigdata_paas.api import schemas
from bigdata_paas.api.common import Blueprint, runtime
from bigdata_paas.operations import health as ops

blp = Blueprint("health", __name__, description="Liveness and readiness probes")


@blp.route("/health", methods=["GET"])
@blp.doc(security=[])
@blp.alt_response(503, schema=schemas.HealthOut, description="the database or broker is down")
@blp.response(200, schemas.HealthOut, description="all up")
def health():
    """Report whether the web process, the database and the broker answer."""
    body = ops.check(runtime())
    return body, 200 if body["status"] == "ok" else 503


@blp.route("/livez", methods=["GET"])
@blp.doc(security=[])
@blp.response(200, schemas.LiveOut, description="the process answers")
def livez():
    """Answer at once: the web process is alive (it touches neither database nor broker, so
    an outage elsewhere never gets a healthy process restarted)."""
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.doc(security=[])
@blp.alt_response(503, schema=schemas.ReadyOut, description="the database or broker is down")
@blp.response(200, schemas.ReadyOut, description="ready for requests")
def readyz():
    """Say whether requests can be served: the database and the broker answer within
    ``PAAS_PROBE_TIMEOUT`` seconds; a 503 names the one that did not (``failed``)."""
    body = ops.ready(runtime())
    return body, 200 if body["status"] == "ready" else 503
