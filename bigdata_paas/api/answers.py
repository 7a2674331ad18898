"""Answers kept with the version of what they show, for reads asked again and again."""

from __future__ import annotations

import threading
from collections import OrderedDict


class Answers:
    """The last answer of a read per key (an instance's id), with the version of the rows
    it was made from: it is given again only for that same version, which each request
    reads anew, with its token check (api/auth.py). Nothing expires by time; a key not asked
    for a while makes room for others: at most ``entries`` answers and ``size`` bytes.
    """

    def __init__(self, entries: int = 256, size: int = 32 * 2**20) -> None:
        self.entries, self.size = entries, size
        self._kept: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str, version: str) -> bytes | None:
        """The answer kept for ``key`` if it was made from ``version``, else None."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None or kept[0] != version:
                return None
            self._kept.move_to_end(key)
            return kept[1]

    def put(self, key: str, version: str, answer: bytes) -> None:
        """Keep ``answer``, made from ``version``, for ``key`` (one too big is not kept)."""
        if len(answer) > self.size:
            return
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._kept[key] = (version, answer)
            self._bytes += len(answer)
            while len(self._kept) > self.entries or self._bytes > self.size:
                _, (_, dropped) = self._kept.popitem(last=False)
                self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._kept)
