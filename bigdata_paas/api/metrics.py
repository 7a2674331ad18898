"""``GET /metrics``: the platform's figures in Prometheus's text format.

A collector reads the database at scrape time (operations/metrics.py), so every web process
answers the same whichever of them Prometheus reaches. Names follow Prometheus's rules: the
``paas_`` prefix, base units (bytes, seconds), and labels drawn from bounded sets (statuses,
steps, services and hosts of the catalog and inventory; never an instance id or a user).
Task-level figures (each Celery task's rate and runtime) are Flower's own ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from bigdata_paas.api.common import Blueprint, caller, errors
from bigdata_paas.errors import Forbidden
from bigdata_paas.models import HOST_STATES
from bigdata_paas.operations import metrics as ops
from bigdata_paas.runtime import Runtime

blp = Blueprint("metrics", __name__, description="Prometheus metrics")

#: upper bounds (seconds) of the launch-to-running histogram: a tiny cluster in seconds, a big
#: one, or one that waited in the queue, in minutes to hours
LAUNCH_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)


class PlatformCollector(Collector):
    """Every ``paas_`` metric, from one read of the database per scrape."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        figures = ops.read(self.rt)

        instances = GaugeMetricFamily(
            "paas_instances",
            "Instances by service, version and status.",
            labels=["service", "version", "status"],
        )
        for (service, version, status), count in sorted(figures.instances.items()):
            instances.add_metric([service, version, status], count)
        yield instances

        yield GaugeMetricFamily(
            "paas_queued_instances",
            "Instances waiting in the queue for capacity.",
            value=figures.queued,
        )
        yield GaugeMetricFamily(
            "paas_queue_oldest_wait_seconds",
            "How long the longest-waiting queued instance has waited (0 when none waits).",
            value=figures.oldest_queued_wait,
        )

        yield from self._hosts(figures)

        capacity = GaugeMetricFamily(
            "paas_network_addresses",
            "Addresses a network may hand out to nodes.",
            labels=["network"],
        )
        allocated = GaugeMetricFamily(
            "paas_network_addresses_allocated",
            "Addresses of a network held by nodes.",
            labels=["network"],
        )
        for network, (size, used) in sorted(figures.addresses.items()):
            capacity.add_metric([network], size)
            allocated.add_metric([network], used)
        yield capacity
        yield allocated

        yield CounterMetricFamily(
            "paas_launches", "Instances ever launched.", value=figures.launches
        )
        failures = CounterMetricFamily(
            "paas_launch_failures",
            "Launch step failures, by the step that failed (a retried instance counts again).",
            labels=["step"],
        )
        for step, count in figures.failures.items():
            failures.add_metric([step], count)
        yield failures
        yield _histogram(
            "paas_launch_to_running_seconds",
            "Seconds from a launch to its instance first running.",
            figures.launch_to_running,
        )

    def _hosts(self, figures: ops.Figures) -> Iterator[Metric]:
        per_host = {
            "paas_host_cpu_cores": ("CPU cores of a host.", "cpu"),
            "paas_host_cpu_allocated_cores": (
                "CPU cores of a host held by nodes.",
                "cpu_allocated",
            ),
            "paas_host_memory_bytes": ("Memory of a host.", "mem_bytes"),
            "paas_host_memory_allocated_bytes": (
                "Memory of a host held by nodes.",
                "mem_allocated_bytes",
            ),
            "paas_host_disks": ("Disks of a host.", "disks"),
            "paas_host_disks_allocated": ("Disks of a host held by nodes.", "disks_allocated"),
        }
        for name, (text, attribute) in per_host.items():
            family = GaugeMetricFamily(name, text, labels=["host"])
            for host in figures.hosts:
                family.add_metric([host.name], getattr(host, attribute))
            yield family

        by_state = GaugeMetricFamily("paas_hosts", "Hosts by state.", labels=["state"])
        for state in HOST_STATES:
            by_state.add_metric([state], sum(1 for h in figures.hosts if h.state == state))
        yield by_state

        age = GaugeMetricFamily(
            "paas_agent_heartbeat_age_seconds",
            "Seconds since a host's agent last reported (hosts whose agent ever reported).",
            labels=["host"],
        )
        for host in figures.hosts:
            if host.agent_age is not None:
                age.add_metric([host.name], host.agent_age)
        yield age


def _histogram(name: str, text: str, values: list[float]) -> HistogramMetricFamily:
    buckets = [
        (str(float(bound)), sum(1 for v in values if v <= bound)) for bound in LAUNCH_BUCKETS
    ]
    buckets.append(("+Inf", len(values)))
    return HistogramMetricFamily(name, text, buckets=buckets, sum_value=sum(values))


@blp.record_once
def _make_registry(state) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformCollector(state.app.extensions["paas"]))
    state.app.extensions["paas_metrics"] = registry


@blp.route("/metrics", methods=["GET"])
@blp.doc(
    description="Bearer: `PAAS_METRICS_TOKEN` (for Prometheus) or an admin's token.",
    responses={
        200: {
            "description": "the platform's metrics in Prometheus's text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **errors(401, 403, 503)["responses"],
    },
)
def metrics():
    """Report the platform's figures, computed from the database now."""
    user = caller()  # None: the metrics token (api/auth.py)
    if user is not None and not user.is_admin:
        raise Forbidden("metrics need the metrics token or the admin role")
    body = generate_latest(current_app.extensions["paas_metrics"])
    return Response(body, status=200, content_type=CONTENT_TYPE_PLAIN_0_0_4)
