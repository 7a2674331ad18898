"""A sorted collection of ints kept in short chunks, for the engine's host indexes.

One flat sorted list would make every insert and delete move half of it (80 KB for 10,000
hosts); chunks of a few hundred keep that to a few hundred bytes while lookups stay two
bisects. It is the layout of ``sortedcontainers.SortedList``, cut down to what placement needs.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

CHUNK = 256


class SortedKeys:
    """Distinct ints in ascending order: ``chunks`` of sorted lists and each chunk's max."""

    __slots__ = ("chunks", "maxes")

    def __init__(self, ordered: list[int]) -> None:
        self.chunks = [ordered[i : i + CHUNK] for i in range(0, len(ordered), CHUNK)]
        self.maxes = [chunk[-1] for chunk in self.chunks]

    def __len__(self) -> int:
        return sum(map(len, self.chunks))

    def __iter__(self) -> Iterator[int]:
        for chunk in self.chunks:
            yield from chunk

    def copy(self) -> SortedKeys:
        """Return an independent copy."""
        twin = SortedKeys.__new__(SortedKeys)
        twin.chunks = [chunk[:] for chunk in self.chunks]
        twin.maxes = self.maxes[:]
        return twin

    def discard(self, key: int) -> bool:
        """Remove ``key`` if present; say whether it was."""
        maxes = self.maxes
        i = bisect_left(maxes, key)
        if i == len(maxes):
            return False
        chunk = self.chunks[i]
        j = bisect_left(chunk, key)
        if chunk[j] != key:
            return False
        del chunk[j]
        if not chunk:
            del self.chunks[i]
            del maxes[i]
        elif j == len(chunk):
            maxes[i] = chunk[-1]
        return True

    def add(self, key: int) -> None:
        """Insert ``key``, which must not be present."""
        maxes = self.maxes
        if not maxes:
            self.chunks.append([key])
            maxes.append(key)
            return
        i = bisect_left(maxes, key)
        if i == len(maxes):
            i -= 1
            chunk = self.chunks[i]
            chunk.append(key)
            maxes[i] = key
        else:
            chunk = self.chunks[i]
            insort(chunk, key)
        if len(chunk) > 2 * CHUNK:
            self.chunks[i : i + 1] = [chunk[:CHUNK], chunk[CHUNK:]]
            maxes[i : i + 1] = [chunk[CHUNK - 1], chunk[-1]]
