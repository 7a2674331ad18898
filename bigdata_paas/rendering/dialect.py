"""The original system's dialect: values its templates write as strings, read as what they mean.

The system this platform re-creates kept everything in a key-value store as strings, and the
service templates written for it say ``"cpu": "2"``, ``"port": "22"``,
``"check_ports": "22,8088"``, ``"tags": "yarn,master"`` or ``"check_ports": 22``. The spec
validator reads a value through these functions, once, after rendering, so what is stored and
handed to placement and orquestrators has the real types. Each function only converts what is
unambiguous and returns anything else unchanged, for the validator to refuse with the message
it always gave: ``"2.5"`` is no integer and ``"two"`` no number.
"""

from __future__ import annotations

import re
from typing import Any

# ASCII digits only (int() also reads "²", "٣" and " 2 "); 18 digits stay far below what
# int() refuses, and the validator's own bounds refuse anything that large anyway.
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_BOOLEANS = {"true": True, "false": False}


def as_integer(value: Any) -> Any:
    """An integer written as a string, as that integer (``"2"`` -> 2); anything else as is."""
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return value


def as_list(value: Any) -> Any:
    """A list written as comma-separated text, as a list; anything else as is.

    ``"yarn,master"`` -> ``["yarn", "master"]`` (each item stripped of spaces), ``"master"``
    -> ``["master"]``, ``""`` -> ``[]``.
    """
    if isinstance(value, str):
        return [item.strip() for item in value.split(",")] if value.strip() else []
    return value


def as_number_list(value: Any) -> Any:
    """Like ``as_list``, and a bare integer is a list of one (``22`` -> ``[22]``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    return as_list(value)


def as_boolean(value: Any) -> Any:
    """``"true"`` / ``"false"`` in any case, as a boolean; anything else as is."""
    if isinstance(value, str):
        return _BOOLEANS.get(value.lower(), value)
    return value
