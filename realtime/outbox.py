"""Publications on their way to Redis: a bounded queue drained by one task in pipelined
batches, so a Redis outage never delays an acknowledgement; while Redis is down they are
dropped (the receivers catch up from PostgreSQL). Each goes to its room's channel, with the
publish command of that kind of channel (`realtime.room_channels`)."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from domain.redis_client import RedisClient
from realtime.background import BackgroundTask
from realtime.metrics import FANOUT_PUBLISH_FAILURES
from realtime.room_channels import Channels

log = logging.getLogger(__name__)

_QUEUE = 20_000
_BATCH = 500


class Outbox:
    def __init__(self, redis: RedisClient, channels: Channels) -> None:
        self._redis = redis
        self._channels = channels
        self._queue: asyncio.Queue[tuple[UUID, str]] = asyncio.Queue(_QUEUE)
        self._publisher = BackgroundTask("fanout-publish", self._publish_forever)

    def start(self) -> None:
        self._publisher.start()

    async def stop(self) -> None:
        await self._publisher.stop()

    def put(self, room: UUID, publication: str) -> None:
        try:
            self._queue.put_nowait((room, publication))
        except asyncio.QueueFull:
            log.warning("fan-out queue full; a publication is dropped (messages are resynced)")

    async def _publish_forever(self) -> None:
        queue, channel = self._queue, self._channels.channel
        task = asyncio.current_task()
        assert task is not None
        while True:
            if task.cancelling():  # a redis-py await swallowed the stop (realtime.background)
                raise asyncio.CancelledError
            batch = [await queue.get()]
            while len(batch) < _BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                publish = (await self._channels.flavour()).publish
                async with self._redis.pipeline(transaction=False) as pipe:
                    for room, publication in batch:
                        pipe.execute_command(publish, channel(room), publication)
                    await pipe.execute()
            except Exception as exc:  # Redis down: other replicas catch up from PostgreSQL
                log.warning("fan-out publish failed (%d dropped): %s", len(batch), exc)
                FANOUT_PUBLISH_FAILURES.inc(len(batch))
                await asyncio.sleep(0.5)
