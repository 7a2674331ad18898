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
    (keep-alives) and messages without data are skipped, but a ``retry:`` is reported."""
    last_id: str | None = None
    event, data, retry = "", [], None
    for line in lines:
        if not line:
            if data:
                yield ServerEvent(last_id, event or "message", "\n".join(data), retry)
            elif retry is not None:
                yield ServerEvent(last_id, "", "", retry)
            event, data, retry = "", [], None
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
                last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            retry = int(value)
