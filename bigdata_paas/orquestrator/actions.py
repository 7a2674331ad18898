"""The actions an orquestrator declares beyond start and stop, read from its source.

A script declares the resize actions it implements in a comment line of its own, near the top
(within its first ``HEADER_LINES`` lines)::

    # paas-actions: scale-out decommission

It may also name the fields of a staying node that its resize actions reconfigure, so that a
resize may change them (for instance ``check_ports``, or ``tags`` a role follows)::

    # paas-resize-changes: check_ports tags

Reading a declaration runs nothing (the web process never runs an orquestrator), so a resize
of a service whose orquestrator lacks the action is refused before anything changes.
"""

from __future__ import annotations

import re

#: the actions a resize may ask for: adding nodes, and removing them
RESIZE_ACTIONS = ("scale-out", "decommission")
#: how many lines from the top a declaration may be
HEADER_LINES = 40
DECLARATION = re.compile(r"^\s*(?:#|//|--)\s*paas-actions:\s*(?P<actions>.*)$")
CHANGES = re.compile(r"^\s*(?:#|//|--)\s*paas-resize-changes:\s*(?P<fields>.*)$")


def declared_actions(script: str | None) -> frozenset[str]:
    """The actions ``script`` declares (``start`` and ``stop`` are always there)."""
    found = {"start", "stop"}
    for line in (script or "").splitlines()[:HEADER_LINES]:
        match = DECLARATION.match(line)
        if match:
            found.update(a for a in re.split(r"[\s,]+", match.group("actions")) if a)
    return frozenset(found)


def declared_changes(script: str | None) -> frozenset[str]:
    """The fields of a staying node ``script`` lets a resize change (none unless declared)."""
    found: set[str] = set()
    for line in (script or "").splitlines()[:HEADER_LINES]:
        match = CHANGES.match(line)
        if match:
            found.update(f for f in re.split(r"[\s,]+", match.group("fields")) if f)
    return frozenset(found)
