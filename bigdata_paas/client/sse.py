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


class Decoder:
    """Feed it the stream's lines (without their line breaks), one at a time."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self._event = ""
        self._data: list[str] = []
        self._retry: int | None = None
        self._new_id = False

    def feed(self, line: str) -> ServerEvent | None:
        """The message a blank line completes, if any. Comments (keep-alives) give nothing;
        a message without data is given (with an empty ``event`` and ``data``) when it set
        the id or ``retry:``, which a client keeps, and skipped otherwise."""
        if not line:
            out = None
            if self._data:
                event = self._event or "message"
                out = ServerEvent(self.last_id, event, "\n".join(self._data), self._retry)
            elif self._retry is not None or self._new_id:
                out = ServerEvent(self.last_id, "", "", self._retry)
            self._event, self._data, self._retry, self._new_id = "", [], None, False
            return out
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_id, self._new_id = value, True
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None


def parse(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """The messages of a stream given as lines (see :meth:`Decoder.feed`)."""
    decoder = Decoder()
    for line in lines:
        message = decoder.feed(line)
        if message is not None:
            yield message
