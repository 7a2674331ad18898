"""What this machine's agents run for this deployment, seen through their drivers (no broker,
no database): for an operator checking that a clean-up left nothing behind."""

from __future__ import annotations

from bigdata_paas.nodes import NodeRuntimeError, NodeState
from bigdata_paas.nodes.driver import podman_works
from bigdata_paas.settings import Config


def deployment_label(config: Config) -> dict[str, str]:
    """The label every container of this deployment's agents carries."""
    return {"paas.deployment": config.deployment or "default"}


def local_nodes(config: Config) -> list[NodeState]:
    """The nodes of this deployment on this machine, running or not: the process driver's
    records under ``DATA_DIR/agents/<host>/state`` and the podman containers labelled with
    this deployment (when podman works here)."""
    from bigdata_paas.nodes.process import ProcessDriver

    found: list[NodeState] = []
    for records in sorted(config.agents_path.glob("*/state/records")):
        if any(records.glob("*.json")):
            found += ProcessDriver(records.parent).list(host="")
    if config.NODE_DRIVER != "process" and podman_works():
        from bigdata_paas.nodes.podman import PodmanDriver

        driver = PodmanDriver(config.agents_path, labels=deployment_label(config))
        try:
            found += driver.list(host="")
        except NodeRuntimeError:
            pass  # podman answered `version` but not `ps`: nothing to say about it
    return found
