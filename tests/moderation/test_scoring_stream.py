"""The moderation stream's consumer against real Redis: a finished batch leaves the stream."""

from __future__ import annotations

from uuid import uuid4

import redis.asyncio as aioredis

from moderation.scoring_stream import StreamConsumer


async def test_finish_acknowledges_and_deletes_a_batch(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    stream = f"test-inbox-{uuid4().hex[:8]}"
    consumer = StreamConsumer(redis, stream, "scorers", "w1", batch_size=10, reclaim_after=60)
    try:
        await consumer.ensure_group()
        ids = [uuid4() for _ in range(3)]
        for message_id in ids:
            await redis.xadd(stream, {"id": str(message_id)})
        batch = await consumer.take()
        assert [entry.message_id for entry in batch] == ids
        await consumer.finish(batch)
        assert await redis.xlen(stream) == 0
        assert (await redis.xpending(stream, "scorers"))["pending"] == 0
        assert await consumer.take() == []
    finally:
        await redis.delete(stream)
        await redis.aclose()
