"""The render context of an instance: the one place its names and coordinates are decided.

The upload check, the plan, the launch's dry render and the prepare step all build the context
here, so a template sees the same shape at every stage: flat ``opts``, the option names nested
(``slaves.number`` -> ``{{ slaves.number }}``), and the instance's coordinates.
"""

from __future__ import annotations

from typing import Any

from bigdata_paas.names import instance_name

RESERVED_NAMES = ("opts", "instancename", "clusterid", "clusterdn", "user", "service", "version")
#: The instance id the upload check renders with: no instance exists yet, and a fixed id keeps
#: the check's result (and its error messages) the same from one upload to the next.
TRIAL_INSTANCE_ID = "0" * 32


def instance_context(
    options: dict[str, Any],
    *,
    instance_id: str,
    user: str,
    service: str,
    version: str,
) -> dict[str, Any]:
    """Build the context a template of ``service`` renders with for one instance.

    ``instancename`` is the instance's name (``<service>-<first 8 of the id>``), ``clusterid``
    its id and ``clusterdn`` ``<instancename>.<user>``. Option ``slaves.number`` is reachable
    as ``opts['slaves.number']`` and as ``{{ slaves.number }}``. The reserved names (``opts``,
    ``instancename``, ``clusterid``, ``clusterdn``, ``user``, ``service``, ``version``) win over
    a nested top-level name that collides with them, and an option that clashes with another's
    prefix (``a`` and ``a.b``, which a validated document never has) is only reachable through
    ``opts``; the first one in ``options`` order keeps the nested name. Nested names shadow
    Jinja globals of the same name (an option ``range.x`` hides ``range()``): that is the
    operator's choice.
    """
    name = instance_name(service, instance_id)
    context: dict[str, Any] = {"opts": dict(options)}
    context.update(_nested(options))
    context.update(
        opts=dict(options),
        instancename=name,
        clusterid=instance_id,
        clusterdn=f"{name}.{user}",
        user=user,
        service=service,
        version=version,
    )
    return context


def _nested(options: dict[str, Any]) -> dict[str, Any]:
    """The options as nested mappings: ``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
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
    return nested
