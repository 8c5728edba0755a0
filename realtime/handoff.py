"""Hand-off of stored (and edited) messages to moderation, off the ack path.

`submit` never waits: messages queue in memory and one task appends them, pipelined, to a Redis
stream that moderation workers consume with a consumer group. While Redis is away the batch is
kept and retried; a queue overflowing during a long outage drops (and logs) messages, and a hub
killed before its hand-off loses its queue: the workers' sweep finds those in PostgreSQL.

An entry names a message, never its text: workers read the text from PostgreSQL, so Redis holds
no chat text and a deleted message leaves none behind. Workers delete the entries they score.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from redis.typing import EncodableT, FieldT

from domain.chat.messages import Message
from domain.redis_client import RedisClient
from realtime.background import BackgroundTask

log = logging.getLogger(__name__)

_QUEUE = 50_000
_BATCH = 500
# Approximate cap on the stream while no worker consumes it (scored entries are deleted).
_STREAM_MAXLEN = 1_000_000


def moderation_stream(prefix: str) -> str:
    """The Redis stream of stored messages waiting to be scored."""
    return f"{prefix}:moderation:inbox"


def moderation_events(prefix: str) -> str:
    """The pub/sub channel of `flag` and `flag_updated` events for the moderators."""
    return f"{prefix}:moderation:events"


async def publish_flag_event(
    redis: RedisClient, prefix: str, event: str, flag: dict[str, Any]
) -> None:
    await redis.publish(moderation_events(prefix), json.dumps({"e": event, "d": flag}))


class ModerationHandoff:
    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self.stream = moderation_stream(prefix)
        self._queue: asyncio.Queue[Message] = asyncio.Queue(_QUEUE)
        self._drain = BackgroundTask("moderation-handoff", self._drain_forever)

    async def start(self) -> None:
        self._drain.start()

    async def stop(self) -> None:
        await self._drain.stop()

    async def announce_flag(self, flag: dict[str, Any]) -> None:
        """Push a new flag (a user's report) to the moderators of every replica."""
        await publish_flag_event(self._redis, self._prefix, "flag", flag)

    def submit(self, message: Message) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            log.error("moderation hand-off queue full: message %s left to the sweep", message.id)

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
        "ts": (message.edited_at or message.ts).isoformat(),
    }
