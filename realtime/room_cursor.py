"""A room's delivery order on one replica, with no I/O: which messages may go out now.

The cursor is the seq delivered last. A message at or below it is a repeat; the one right
after it goes out at once, together with whatever waited behind it; one further on waits in
the early buffer, since concurrent sends finish out of order. While anything waits there a
gap is open: the fan-out gives it a moment to close, then reads the missing messages from
PostgreSQL, delivers them, and `release`s what waited.
"""

from __future__ import annotations

from typing import Generic, TypeVar

M = TypeVar("M")


class RoomCursor(Generic[M]):
    """The seq delivered last, and the messages received past a gap, by seq."""

    __slots__ = ("_early", "seq")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self._early: dict[int, M] = {}

    def offer(self, seq: int, message: M) -> list[M]:
        """The messages to deliver now, in order: none for a repeat or a message past a
        gap (kept until the gap closes), else `message` and those that waited behind it."""
        if seq <= self.seq:
            return []
        if seq > self.seq + 1:
            self._early[seq] = message
            return []
        self.seq = seq
        return [message, *self.release()]

    def delivered(self, seq: int) -> None:
        """`seq` went out by another way (read from PostgreSQL to fill a gap)."""
        self.seq = max(self.seq, seq)

    def release(self) -> list[M]:
        """The waiting messages that now follow the cursor without a gap, in order; those
        at or below it are dropped as repeats."""
        early = self._early
        if not early:
            return []
        for seq in [seq for seq in early if seq <= self.seq]:
            del early[seq]
        ready: list[M] = []
        while (message := early.pop(self.seq + 1, None)) is not None:
            ready.append(message)
            self.seq += 1
        return ready

    @property
    def gap_end(self) -> int | None:
        """The last seq missing before the first waiting message, while a gap is open."""
        return min(self._early) - 1 if self._early else None
