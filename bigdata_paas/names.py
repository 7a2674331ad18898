"""Every kind of name the platform accepts: one pattern each, with the words that explain it.

Operations, rendering and the API schemas all check names here, so what is refused, what the
error says and what the OpenAPI document declares cannot drift apart. Plain ``re`` only (no
Flask, no marshmallow): every layer may import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NameRule:
    """A kind of name: its pattern (without anchors) and how to describe it in an error."""

    kind: str
    body: str
    description: str
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # \A and \Z, not ^ and $: "$" also matches before a trailing newline ("a\n" would pass).
        object.__setattr__(self, "regex", re.compile(rf"\A(?:{self.body})\Z"))

    @property
    def pattern(self) -> str:
        """The pattern for a JSON Schema (ECMA ``$`` never matches before a final newline)."""
        return f"^(?:{self.body})$"

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and self.regex.match(value) is not None

    @property
    def message(self) -> str:
        """The error text for a name that does not match: ``must be <description>``."""
        return f"must be {self.description}"


# Two character sets that several kinds share; each kind still has its own rule and words.
_INVENTORY = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_INVENTORY_WORDS = "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
_SPEC = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"
_SPEC_WORDS = "1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"

SERVICE_NAME = NameRule(
    "service name",
    r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}",
    "1 to 64 letters, digits, '_' or '-', starting with a letter or digit",
)
VERSION = NameRule(
    "version",
    r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}",
    "1 to 64 letters, digits, '_', '.', '+' or '-', starting with a letter or digit, without '..'",
)
USER_NAME = NameRule(
    "user name",
    r"[a-z][a-z0-9_.-]{0,63}",
    "1 to 64 lowercase letters, digits, '_', '.' or '-', starting with a letter",
)
HOST_NAME = NameRule("host name", _INVENTORY, _INVENTORY_WORDS)
HOST_ADDRESS = NameRule(
    "host address",
    r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}",
    "a host name or IP address (1 to 255 letters, digits, '_', '.', ':' or '-', "
    "starting with a letter or digit)",
)
NETWORK_NAME = NameRule("network name", _INVENTORY, _INVENTORY_WORDS)
INTERFACE_NAME = NameRule("interface name", _INVENTORY, _INVENTORY_WORDS)
DISK_NAME = NameRule("host disk name", _INVENTORY, _INVENTORY_WORDS)
DISK_TYPE = NameRule("disk type", _INVENTORY, f"a type name like hdd ({_INVENTORY_WORDS})")
LABEL_NAME = NameRule("label name", _INVENTORY, _INVENTORY_WORDS)
#: names inside a rendered instance spec: nodes, their disks and network devices, services
NODE_NAME = NameRule("node name", _SPEC, _SPEC_WORDS)
NODE_DISK_NAME = NameRule("disk name", _SPEC, _SPEC_WORDS)
NODE_DEVICE_NAME = NameRule("network device name", _SPEC, _SPEC_WORDS)
SPEC_SERVICE_NAME = NameRule("service name", _SPEC, _SPEC_WORDS)
#: instance ids (32 hex digits today); no '-', so a container ``paas-<instance>-<node>``
#: splits one way
INSTANCE_ID = NameRule("instance id", r"[A-Za-z0-9_]{1,64}", "letters, digits and '_' only")
#: keys of the labels a node's container or process record carries
NODE_LABEL_KEY = NameRule(
    "label key",
    r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}",
    "1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit",
)
OPTION_NAME = NameRule(
    "option name",
    r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*",
    "dotted identifiers (letters, digits, _), e.g. slaves.number",
)
#: a launch's Idempotency-Key header, chosen by the client (a UUID is a good one)
IDEMPOTENCY_KEY = NameRule(
    "Idempotency-Key",
    r"[!-~]{1,255}",
    "1 to 255 visible ASCII characters (no spaces), e.g. a UUID",
)

RULES = (
    SERVICE_NAME,
    VERSION,
    USER_NAME,
    HOST_NAME,
    HOST_ADDRESS,
    NETWORK_NAME,
    INTERFACE_NAME,
    DISK_NAME,
    DISK_TYPE,
    LABEL_NAME,
    NODE_NAME,
    NODE_DISK_NAME,
    NODE_DEVICE_NAME,
    SPEC_SERVICE_NAME,
    OPTION_NAME,
    IDEMPOTENCY_KEY,
)


def instance_name(service: str, instance_id: str) -> str:
    """The name of an instance: its service and the first 8 characters of its id."""
    return f"{service}-{instance_id[:8]}"
