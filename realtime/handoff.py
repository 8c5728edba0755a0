"""Hand-off of stored messages to moderation, off the ack path.

`submit` never waits: messages queue in memory and one task appends them, pipelined, to a Redis
stream that moderation workers consume with a consumer group. While Redis is away the batch is
kept and retried; only a queue overflowing during a long outage drops (and logs) messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from domain.messages import Message

log = logging.getLogger(__name__)

_QUEUE = 50_000
_BATCH = 500
# Approximate cap on the stream: consumed entries need not be kept forever.
_STREAM_MAXLEN = 1_000_000


def moderation_stream(prefix: str) -> str:
    return f"{prefix}:moderation:inbox"


class ModerationHandoff:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self.stream = moderation_stream(prefix)
        self._queue: asyncio.Queue[Message] = asyncio.Queue(_QUEUE)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._drain_forever(), name="moderation-handoff")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def submit(self, message: Message) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            log.error("moderation hand-off queue full: message %s not scored", message.id)

    async def _drain_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            while True:
                try:
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for message in batch:
                            pipe.xadd(
                                self.stream,
                                _entry(message),
                                maxlen=_STREAM_MAXLEN,
                                approximate=True,
                            )
                        await pipe.execute()
                    break
                except Exception as exc:
                    log.warning("moderation hand-off waits for Redis: %s", exc)
                    await asyncio.sleep(0.5)


def _entry(message: Message) -> dict[FieldT, EncodableT]:
    return {
        "id": str(message.id),
        "room": str(message.room),
        "seq": str(message.seq),
        "sender": str(message.sender.id),
        "body": message.body,
    }
