"""Group commit of chat sends: concurrent sends share one statement and one commit.

Every send is durable before it is acknowledged, and each commit waits for the disk, so a
room whose sends committed one by one would cap at one fsync per message. Here sends queue up
while a batch is being stored, and the next batch takes all of them; under light load a batch
is a single message and costs what a lone insert costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from domain.messages import Message, NewMessage, store_message, store_messages

log = logging.getLogger(__name__)

_MAX_BATCH = 500
_WRITERS = 2  # batches in flight at once: one storing while the next is being sent


class GroupCommitStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._waiting: list[tuple[NewMessage, asyncio.Future[tuple[Message, bool]]]] = []
        self._wakeup = asyncio.Event()
        self._writers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._writers = [
            asyncio.create_task(self._write_forever(), name=f"group-commit-{n}")
            for n in range(_WRITERS)
        ]

    async def stop(self) -> None:
        for task in self._writers:
            task.cancel()
        for task in self._writers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def store(self, message: NewMessage) -> tuple[Message, bool]:
        """Store a message; return it and whether it is new (see `store_message`)."""
        future: asyncio.Future[tuple[Message, bool]] = asyncio.get_running_loop().create_future()
        self._waiting.append((message, future))
        self._wakeup.set()
        return await future

    async def _write_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            batch, self._waiting = self._waiting[:_MAX_BATCH], self._waiting[_MAX_BATCH:]
            if not self._waiting:
                self._wakeup.clear()
            if batch:
                await self._write(batch)

    async def _write(
        self, batch: list[tuple[NewMessage, asyncio.Future[tuple[Message, bool]]]]
    ) -> None:
        try:
            stored = await store_messages(self._pool, [message for message, _ in batch])
        except asyncpg.UniqueViolationError:
            # A retried client_id raced in from another replica: answer one by one.
            stored = [None] * len(batch)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (message, future), result in zip(batch, stored, strict=True):
            if future.done():
                continue
            if result is not None:
                future.set_result((result, True))
                continue
            try:  # refused or already stored: the one-by-one path says which
                future.set_result(
                    await store_message(
                        self._pool, message.room, message.sender, message.client_id, message.body
                    )
                )
            except Exception as exc:
                future.set_exception(exc)
