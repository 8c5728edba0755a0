"""Group commit: concurrent callers share one statement and one commit.

Each commit waits for the disk and each statement costs a round trip, so work that must be
durable before it is answered (a chat send, an audited EHR read) would cap at one commit per
call. Here calls queue up while a batch is in flight and the next batch takes all of them;
under light load a batch holds one call and costs what a lone statement costs.

Writers run only while there is work: no task to start or stop, nothing left behind. Both
services batch this way (the hub's chat sends, `realtime.group_commit`; the API's EHR reads,
`domain.clinical.ehr.list_records`), so it sits below both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# How long a join's calls (its membership read, its presence arrival, its room's subscription)
# wait for others to share them: at 1,000 joins a second only a few came per round trip, and
# each few paid a call of its own (the capacity scenario).
JOIN_LINGER_S = 0.002

# The batch's outcome per item, in order: a result, or the exception that item's caller gets.
Write = Callable[[list[Item]], Awaitable[Sequence[Result | Exception]]]


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        write: Write[Item, Result],
        *,
        max_batch: int = 500,
        writers: int = 2,
        linger_s: float = 0.0,
    ):
        """`writers` batches may be in flight at once: one being stored while the next is sent.
        A writer waits `linger_s` for more calls before it writes a batch short of `max_batch`
        (one writer at a time, which the calls made meanwhile wait for; a batch that fills up
        ends the wait): a little latency for fewer round trips, where calls come faster than
        one per round trip but not all at once (a crowd of clients joining)."""
        self._write = write
        self._max_batch = max_batch
        self._max_writers = writers
        self._linger_s = linger_s
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writers: set[asyncio.Task[None]] = set()
        self._lingering: asyncio.Event | None = None  # while a writer lingers; set() ends it

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._lingering is not None:  # the lingering writer takes this call
            if len(self._waiting) >= self._max_batch:
                self._lingering.set()
        elif len(self._writers) < self._max_writers:
            self._writers.add(asyncio.create_task(self._drain()))
        return await future

    async def _drain(self) -> None:
        try:
            await self._write_all()
        finally:
            # At once, not in a done callback: one scheduled for later would leave a writer
            # that has stopped looking counted, and a call submitted meanwhile unwritten.
            self._writers.discard(asyncio.current_task())

    async def _write_all(self) -> None:
        while self._waiting:
            if self._linger_s and len(self._waiting) < self._max_batch:
                if self._lingering is not None:
                    return  # another writer lingers for these calls
                await self._linger()
                if not self._waiting:  # a writer with a full batch took them meanwhile
                    return
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                outcomes = await self._write([item for item, _ in batch])
            except Exception as exc:  # the whole batch failed: every caller hears why
                outcomes = [exc] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def _linger(self) -> None:
        self._lingering = woken = asyncio.Event()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._linger_s):
                    await woken.wait()
        finally:
            self._lingering = None
