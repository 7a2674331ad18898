"""The node runtime a host agent calls: start, stop, list and inspect the nodes of one host.

Plain data in (a :class:`NodeSpec` built from the platform's placed node), runtime calls out;
no Flask, SQLAlchemy or Celery here. ``select_driver`` picks ``podman`` (one container per
node) or ``process`` (a supervised process group per node) as ``PAAS_NODE_DRIVER`` says.
"""

from bigdata_paas.nodes.docker_opts import (
    NodeOptions,
    check_image,
    image_allowed,
    node_problems,
    parse_command,
    parse_docker_opts,
    parse_image_allow,
    spec_problems,
)
from bigdata_paas.nodes.driver import (
    DRIVERS,
    Mount,
    NodeDriver,
    NodeHandle,
    NodeInfo,
    NodeState,
    select_driver,
)
from bigdata_paas.nodes.errors import (
    NodeNetworkError,
    NodeOptionError,
    NodeRuntimeError,
    NodeStartError,
)
from bigdata_paas.nodes.spec import (
    Disk,
    Interface,
    NodeSpec,
    container_name,
    network_name,
    node_spec,
    remove_instance_dirs,
)

__all__ = [
    "DRIVERS",
    "Disk",
    "Interface",
    "Mount",
    "NodeDriver",
    "NodeHandle",
    "NodeInfo",
    "NodeNetworkError",
    "NodeOptionError",
    "NodeOptions",
    "NodeRuntimeError",
    "NodeSpec",
    "NodeStartError",
    "NodeState",
    "check_image",
    "container_name",
    "image_allowed",
    "network_name",
    "node_problems",
    "node_spec",
    "parse_command",
    "parse_docker_opts",
    "parse_image_allow",
    "remove_instance_dirs",
    "select_driver",
    "spec_problems",
]
