"""When each connection's session ends, kept for a whole namespace at the cost of a set entry
per connection.

A timer per connection would cost about 0.5 KB each (uvloop's handle and libuv's timer), a
tenth of what an idle connection costs in all. Instead connections are grouped by the second
their session ends (access tokens expire on whole seconds, and many share one) and one timer
per namespace, running only while some session is due, ends each group when its second comes.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Callable


class SessionDeadlines:
    """Calls `end(sid)` once the deadline given for `sid` has passed (within a second)."""

    def __init__(self, end: Callable[[str], None]) -> None:
        self._end = end
        self._due: dict[int, set[str]] = {}  # second -> the sessions that end then
        self._seconds: list[int] = []  # a heap of _due's keys
        self._timer: asyncio.TimerHandle | None = None

    def add(self, sid: str, deadline: float) -> None:
        second = math.ceil(deadline)
        sids = self._due.get(second)
        if sids is None:
            sids = self._due[second] = set()
            heapq.heappush(self._seconds, second)
        sids.add(sid)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(1, self._tick)

    def discard(self, sid: str, deadline: float) -> None:
        """Forget `sid`'s session ending at `deadline` (an empty group is dropped when due)."""
        sids = self._due.get(math.ceil(deadline))
        if sids is not None:
            sids.discard(sid)

    def _tick(self) -> None:
        now = time.time()
        while self._seconds and self._seconds[0] <= now:
            for sid in self._due.pop(heapq.heappop(self._seconds)):
                self._end(sid)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(1, self._tick) if self._seconds else None
