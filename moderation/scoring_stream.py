"""The moderation stream as one consumer of its consumer group sees it: batches of entries,
each naming a stored message, taken first from what dead consumers left pending, then from
the consumer's own pending entries (a restart under the same name), then new ones; an entry is
acknowledged and deleted only when its batch is `finish`ed, so the stream holds only what is
still to be scored."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from redis.exceptions import ResponseError

from domain.redis_client import RedisClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamEntry:
    entry_id: str
    message_id: UUID

    @classmethod
    def parse(cls, entry_id: bytes, fields: dict[bytes, bytes]) -> StreamEntry:
        return cls(entry_id=entry_id.decode(), message_id=UUID(fields[b"id"].decode()))


class StreamConsumer:
    def __init__(
        self,
        redis: RedisClient,
        stream: str,
        group: str,
        consumer: str,
        *,
        batch_size: int,
        reclaim_after: float,
    ) -> None:
        """Entries another consumer has left pending for `reclaim_after` seconds are taken."""
        self._redis = redis
        self._stream = stream
        self._group = group
        self._consumer = consumer
        self._batch_size = batch_size
        self._reclaim_after_ms = int(reclaim_after * 1000)
        self._last_reclaim = 0.0

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def take(self) -> list[StreamEntry]:
        """The next batch to score; empty after waiting briefly for new entries."""
        return await self._reclaim() or await self._read()

    async def finish(self, entries: list[StreamEntry]) -> None:
        """Acknowledge and delete a scored batch."""
        # No transaction, only XACK first: it is what ends an entry's delivery, so a worker
        # dying before XDEL leaves a scored entry that no read returns again, in the stream
        # until its MAXLEN trims it.
        async with self._redis.pipeline(transaction=False) as pipe:
            ids = [entry.entry_id for entry in entries]
            pipe.xack(self._stream, self._group, *ids)
            pipe.xdel(self._stream, *ids)
            await pipe.execute()

    async def _read(self) -> list[StreamEntry]:
        # Our own pending entries first (a restart under the same name), then new ones.
        for start in ("0", ">"):
            response: Any = await self._redis.xreadgroup(
                self._group,
                self._consumer,
                {self._stream: start},
                count=self._batch_size,
                block=None if start == "0" else 500,
            )
            entries = await self._parse([entry for _, found in response or [] for entry in found])
            if entries:
                return entries
        return []

    async def _reclaim(self) -> list[StreamEntry]:
        """Entries another consumer read but never acknowledged (it died mid-batch)."""
        now = time.monotonic()
        if now - self._last_reclaim < max(1.0, self._reclaim_after_ms / 5000):
            return []
        self._last_reclaim = now
        response: Any = await self._redis.xautoclaim(
            self._stream,
            self._group,
            self._consumer,
            self._reclaim_after_ms,
            "0-0",
            count=self._batch_size,
        )
        entries = await self._parse(response[1])
        if entries:
            log.info("reclaimed %d entries left pending by a dead worker", len(entries))
        return entries

    async def _parse(
        self, found: list[tuple[bytes, dict[bytes, bytes] | None]]
    ) -> list[StreamEntry]:
        # A pending entry without fields was trimmed from the stream: the sweep scores it.
        if trimmed := [entry_id for entry_id, fields in found if not fields]:
            await self._redis.xack(self._stream, self._group, *trimmed)
        return [StreamEntry.parse(entry_id, fields) for entry_id, fields in found if fields]
