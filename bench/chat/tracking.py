"""Lost, duplicated and reordered messages, per receiving client and numbered stream.

A stream is what the server numbers without gaps: a pawhub room (its `seq`), or, for the Node
reference, one sender in one room (the counter the tester puts in `client_id`), because the
reference's in-memory seq is per process. Numbers arrive in order on one connection, so a
client keeps only the next number it expects and the gaps it has seen, not every number.
"""

from __future__ import annotations


class Stream:
    __slots__ = ("missing", "next")

    def __init__(self, first: int) -> None:
        self.next = first
        self.missing: set[int] = set()


class ClientTally:
    """What one client received, stream by stream."""

    __slots__ = ("duplicated", "first", "reordered", "streams")

    def __init__(self, first: int) -> None:
        self.first = first  # the number a stream starts at for this client
        self.streams: dict[str, Stream] = {}
        self.duplicated = 0
        self.reordered = 0

    def observe(self, stream_key: str, number: int) -> bool:
        """Record one delivery; False when it is a repeat."""
        stream = self.streams.get(stream_key)
        if stream is None:
            stream = self.streams[stream_key] = Stream(self.first)
        if number == stream.next:
            stream.next += 1
        elif number > stream.next:
            stream.missing.update(range(stream.next, number))
            stream.next = number + 1
        elif number in stream.missing:
            stream.missing.discard(number)
            self.reordered += 1
        else:
            self.duplicated += 1
            return False
        return True

    def lost(self, finals: dict[str, int]) -> int:
        """Messages of `finals` (stream -> last number sent) this client never received."""
        lost = 0
        for key, final in finals.items():
            stream = self.streams.get(key)
            if stream is None:
                lost += max(0, final - self.first + 1)
            else:
                lost += len(stream.missing) + max(0, final - (stream.next - 1))
        return lost
