"""Errors of the node runtime: bad node options (a user's fault) and runtime failures."""

from __future__ import annotations


class NodeOptionError(ValueError):
    """A node field the platform refuses; ``option`` names the offending option or field.

    Template upload and launch report it as a 422 naming ``option`` (and ``field``, the
    path of the node field it came from, once the caller sets it).
    """

    def __init__(self, option: str, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.option = option
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class NodeRuntimeError(Exception):
    """The runtime could not do what was asked; ``reason`` is the runtime's own text."""

    def __init__(self, message: str, *, reason: str = "", node: str = "", instance_id: str = ""):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.node = node
        self.instance_id = instance_id


class NodeStartError(NodeRuntimeError):
    """A node that did not start: a missing image, a bad command, a refused address..."""


class NodeNetworkError(NodeRuntimeError):
    """A container network that cannot be made or does not match the platform's network."""
