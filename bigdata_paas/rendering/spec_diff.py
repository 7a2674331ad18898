"""Compare a running instance's spec with the spec its new options render: what a resize does.

Pure: specs in, a ``SpecDiff`` out (or ``ResizeRefused`` naming the problem). Nodes that
appear join, nodes that disappear leave; a node that stays must render exactly as before,
since the platform cannot change a placed node's cpu, memory, disks or image in place, except
in the fields the service's orquestrator says its resize actions reconfigure
(``# paas-resize-changes: check_ports``, see ``orquestrator.actions``); a field the platform
placed or started the node with never changes.

Which nodes leave is predictable: templates number a group's nodes (``slave0``, ``slave1``,
...), so fewer of them drops the highest-numbered. A request may name the leaving nodes instead
(``"remove": ["slave1"]``); the staying nodes of that group keep their names, and the new spec's
nodes of the group take them in number order (the services' node lists follow).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bigdata_paas.errors import ResizeRefused
from bigdata_paas.rendering.spec import node_totals

_NUMBERED = re.compile(r"^(.*?)(\d+)$")
#: what a node was placed or started with: no declaration lets a resize change these
FIXED_FIELDS = frozenset(
    (
        "cpu",
        "mem",
        "disks",
        "networks",
        "constraints",
        "required_node",
        "use_custom_disks",
        "image",
        "docker_opts",
        "command",
    )
)


@dataclass(frozen=True)
class SpecDiff:
    """What a resize changes: the nodes that join and the nodes that leave (name -> node
    spec, in number order), and the new spec (with the leaving nodes a request named already
    taken out)."""

    added: dict[str, dict]
    removed: dict[str, dict]
    spec: dict

    @property
    def action(self) -> str:
        """The orquestrator action that configures this change."""
        return "scale-out" if self.added else "decommission"

    def describe(self) -> str:
        if self.added:
            return f"add {len(self.added)} node(s): {', '.join(self.added)}"
        return f"remove {len(self.removed)} node(s): {', '.join(self.removed)}"


def group_of(name: str) -> tuple[str, int]:
    """A node's group and number: ``slave12`` -> ("slave", 12); an unnumbered node is a
    group of its own, numbered -1."""
    found = _NUMBERED.match(name)
    if found is None:
        return name, -1
    return found.group(1), int(found.group(2))


def _in_number_order(names) -> list[str]:
    return sorted(names, key=lambda n: (group_of(n)[1], n))


def _rename(spec: dict, names: dict[str, str]) -> dict:
    """The spec with nodes renamed (new name -> kept name), in its nodes and services."""
    if not names:
        return spec
    nodes = {names.get(n, n): body for n, body in spec["nodes"].items()}
    services = {}
    for service, body in (spec.get("services") or {}).items():
        if isinstance(body, dict) and isinstance(body.get("nodes"), list):
            body = {**body, "nodes": [names.get(n, n) for n in body["nodes"]]}
        services[service] = body
    return {**spec, "nodes": nodes, "services": services}


def _named_leavers(old: dict, new: dict, remove: Sequence[str]) -> dict:
    """The new spec with the request's leaving nodes taken out instead of the highest."""
    problems = [
        {"field": "remove", "message": f"{name} is not a node of this instance"}
        for name in remove
        if name not in old["nodes"]
    ]
    if len(set(remove)) != len(remove):
        problems.append({"field": "remove", "message": "a node is named twice"})
    if problems:
        raise ResizeRefused(problems)
    leaving = set(old["nodes"]) - set(new["nodes"])
    names: dict[str, str] = {}
    for group in sorted({group_of(n)[0] for n in (*leaving, *remove)}):
        leave = [n for n in leaving if group_of(n)[0] == group]
        named = [n for n in remove if group_of(n)[0] == group]
        if len(named) != len(leave):
            raise ResizeRefused(
                f"the new options remove {len(leave)} node(s) of group {group!r} "
                f"but remove names {len(named)} ({', '.join(sorted(named)) or 'none'})",
                field="remove",
            )
        staying = _in_number_order(n for n in old["nodes"] if group_of(n)[0] == group)
        staying = [n for n in staying if n not in named]
        rendered = _in_number_order(n for n in new["nodes"] if group_of(n)[0] == group)
        names.update(zip(rendered, staying, strict=True))
    return _rename(new, {n: kept for n, kept in names.items() if n != kept})


def _change_refused(name: str, key: str, before: object, after: object, allowed: bool) -> str:
    text = f"node {name} stays but its {key} would change from {before!r} to {after!r}"
    if key in FIXED_FIELDS:
        return f"{text}; the node was placed and started with it: a resize cannot change it"
    if allowed:
        return ""
    return (
        f"{text}; a resize only adds or removes nodes, unless the service's orquestrator "
        f"declares it reconfigures {key} (# paas-resize-changes: {key})"
    )


def diff_specs(
    old: dict, new: dict, remove: Sequence[str] = (), changeable: frozenset[str] = frozenset()
) -> SpecDiff:
    """What turning ``old`` into ``new`` adds and removes; raise ResizeRefused when a
    staying node changes (but in the ``changeable`` fields that are not FIXED_FIELDS), when
    nodes would both join and leave, or when nothing changes."""
    if remove:
        new = _named_leavers(old, new, remove)
    added = {n: body for n, body in new["nodes"].items() if n not in old["nodes"]}
    removed = {n: old["nodes"][n] for n in _in_number_order(set(old["nodes"]) - set(new["nodes"]))}
    changes = (
        (name, key, body.get(key), new["nodes"][name].get(key))
        for name, body in old["nodes"].items()
        if name in new["nodes"]
        for key in sorted(set(body) | set(new["nodes"][name]))
        if body.get(key) != new["nodes"][name].get(key)
    )
    changed = [
        {"field": f"nodes.{name}.{key}", "message": message}
        for name, key, before, after in changes
        if (message := _change_refused(name, key, before, after, key in changeable))
    ]
    if changed:
        raise ResizeRefused(changed)
    if added and removed:
        raise ResizeRefused(
            f"these options add {', '.join(added)} and remove {', '.join(removed)}; a resize "
            "either adds or removes nodes: resize twice"
        )
    if not added and not removed:
        raise ResizeRefused("these options add and remove no node; there is nothing to resize")
    return SpecDiff(added=added, removed=removed, spec=new)


def resize_adds(diff: SpecDiff) -> dict[str, int]:
    """What a resize adds to what its owner holds: nodes, cpu (cores), mem (MB), disks.

    A scale-out's figures are positive (what the quota check weighs); a scale-in's are
    negative (what it gives back)."""
    sign, nodes = (1, diff.added.values()) if diff.added else (-1, diff.removed.values())
    return {what: sign * amount for what, amount in node_totals(nodes).items()}
