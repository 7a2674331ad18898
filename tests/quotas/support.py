"""The ``sized`` service of the quota tests: its options say exactly what an instance holds."""

from __future__ import annotations

from tests.api.support import add_service
from tests.conftest import ADMIN_TOKEN, bearer

#: n nodes of cpu cores, mem MB and d disks each
SIZED_TEMPLATE = """{% set comma = joiner(",") %}
{"nodes": {
{% for i in range(opts['n']) %}{{ comma() }}
  "node{{ i }}": {"cpu": {{ opts['cpu'] }}, "mem": {{ opts['mem'] }}, "disks": {{ opts['d'] }},
                  "networks": {}}
{% endfor %}
}, "services": {}}
"""
SIZED_OPTIONS = {
    "required": {"n": 1},
    "optional": {"cpu": 1, "mem": 128, "d": 0},
    "descriptions": {"n": "nodes", "cpu": "cores a node", "mem": "MB a node", "d": "disks a node"},
}
SIZED_ORQUESTRATOR = "import sys\nprint(sys.argv)\n"


def register_sized(client, name: str = "sized", version: str = "1") -> None:
    add_service(
        client,
        bearer(ADMIN_TOKEN),
        name,
        version,
        template=SIZED_TEMPLATE,
        options=SIZED_OPTIONS,
        orquestrator=SIZED_ORQUESTRATOR,
    )
