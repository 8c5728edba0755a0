"""The bookkeeping of a connection's running event handlers (`realtime.socket_server`)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NamedTuple


class Event(NamedTuple):
    """An EVENT packet, as python-socketio runs it (`SocketIOServer.run_event`)."""

    sid: str
    eio_sid: str
    data: list[Any]
    namespace: str
    ack_id: int | None


class EventSlots:
    """The handlers of one connection's events that are running (at most EVENTS_IN_FLIGHT),
    and the one event its reader waits to hand over while all of them are. Exists while any
    runs: an idle connection holds nothing here."""

    __slots__ = ("backlogged", "next_event", "pushed", "running", "taken")

    def __init__(self) -> None:
        self.running = 0
        self.next_event: Event | None = None
        self.taken: asyncio.Future[None] | None = None  # resolved when `next_event` is taken
        self.backlogged = False  # an event found every slot taken
        self.pushed = 0  # events sent since

    def take_next(self) -> Event | None:
        """The event the reader waits to hand over, if any, taken: the reader goes on."""
        event, self.next_event = self.next_event, None
        if event is not None:
            _resolve(self.taken)
        return event


class Handlers:
    """The tasks running events' handlers, held until they end; a drain waits for them."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, handling: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(handling)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self, within: float) -> int:
        """Wait up to `within` seconds for the running tasks (and those they start), then
        cancel what still runs; how many were cancelled."""
        deadline = asyncio.get_running_loop().time() + within
        while self._tasks:
            remaining = deadline - asyncio.get_running_loop().time()
            _, running = await asyncio.wait(set(self._tasks), timeout=max(remaining, 0))
            if running:
                for task in running:
                    task.cancel()
                return len(running)
        return 0


def _resolve(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)
