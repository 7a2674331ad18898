"""The render context: flat ``opts``, the option names nested, the instance's coordinates."""

from __future__ import annotations

from typing import Any

RESERVED_NAMES = ("opts", "instancename", "clusterid", "clusterdn", "user", "service", "version")


def build_context(
    options: dict[str, Any],
    *,
    instancename: str,
    clusterid: str,
    clusterdn: str,
    user: str,
    service: str,
    version: str,
) -> dict[str, Any]:
    """Build the render context: flat ``opts``, nested option names and instance coordinates.

    Option ``slaves.number`` is reachable as ``opts['slaves.number']`` and as
    ``{{ slaves.number }}``. The reserved names (``opts``, ``instancename``, ``clusterid``,
    ``clusterdn``, ``user``, ``service``, ``version``) win over a nested top-level name that
    collides with them, and an option that clashes with another's prefix (``a`` and ``a.b``,
    which a validated document never has) is only reachable through ``opts``; the first one in
    ``options`` order keeps the nested name. Nested names shadow Jinja globals of the same name
    (an option ``range.x`` hides ``range()``): that is the operator's choice.
    """
    nested: dict[str, Any] = {}
    for name, value in options.items():
        parts = name.split(".")
        node = nested
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            if parts[-1] not in node:
                node[parts[-1]] = value
    context: dict[str, Any] = {"opts": dict(options)}
    context.update(nested)
    context.update(
        opts=dict(options),
        instancename=instancename,
        clusterid=clusterid,
        clusterdn=clusterdn,
        user=user,
        service=service,
        version=version,
    )
    return context
