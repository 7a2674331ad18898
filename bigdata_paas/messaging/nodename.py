"""Celery node names for the Procfile's workers:
``celery worker -n "$(python -m bigdata_paas.messaging.nodename pipeline)"``.

Every copy of a process needs a node name of its own, or Flower and ``celery inspect`` show
the copies as one worker and their remote-control replies collide. The copy comes from
whatever started the process, so it is the same after a restart of that copy:
``PAAS_PROCESS_COPY`` when set (a unit written by hand), else the number honcho gives the copy
(``HONCHO_PROCESS_NAME=worker.2``, also in the units ``honcho export`` writes), else 1. The
host part stays Celery's ``%h``, which keeps machines apart.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

_ROLE = re.compile(r"[a-z][a-z0-9-]{0,62}")


def process_copy(environ: Mapping[str, str] | None = None) -> int:
    """The number of this copy of its Procfile process, counted from 1."""
    environ = os.environ if environ is None else environ
    given = environ.get("PAAS_PROCESS_COPY", "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise ValueError(f"PAAS_PROCESS_COPY must be a whole number from 1, not {given!r}")
        return int(given)
    _, _, number = environ.get("HONCHO_PROCESS_NAME", "").rpartition(".")
    return int(number) if number.isdigit() and int(number) >= 1 else 1


def node_name(role: str, environ: Mapping[str, str] | None = None) -> str:
    """``pipeline-2@%h`` for the second copy of the pipeline worker."""
    if not _ROLE.fullmatch(role):
        raise ValueError(f"a node role is lowercase letters, digits and '-', not {role!r}")
    return f"{role}-{process_copy(environ)}@%h"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bigdata_paas.messaging.nodename ROLE", file=sys.stderr)
        return 2
    try:
        print(node_name(argv[0]))
    except ValueError as exc:
        print(f"workers.nodename: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
