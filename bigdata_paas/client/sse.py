"""Reading text/event-stream (the Server-Sent Events format), as the HTML standard says."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerEvent:
    """One dispatched message: its ``id`` (the last one seen), ``event`` name and ``data``."""

    id: str | None
    event: str
    data: str
    retry: int | None = None


def parse(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """The messages of a stream given as lines without their line breaks. Comments
    (keep-alives) are skipped; a message without data is reported (with an empty ``event``
    and ``data``) when it set the id or ``retry:``, which a client keeps, and skipped
    otherwise."""
    last_id: str | None = None
    event, data, retry, new_id = "", [], None, False
    for line in lines:
        if not line:
            if data:
                yield ServerEvent(last_id, event or "message", "\n".join(data), retry)
            elif retry is not None or new_id:
                yield ServerEvent(last_id, "", "", retry)
            event, data, retry, new_id = "", [], None, False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            if "\0" not in value:
                last_id, new_id = value, True
        elif name == "retry" and value.isascii() and value.isdigit():
            retry = int(value)
