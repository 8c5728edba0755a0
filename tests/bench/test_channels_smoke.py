"""`python -m bench.chat.channels` in small: real subscriptions in the test's Redis, each phase
measured, and none of the run's channels left subscribed. No timing is asserted."""

from __future__ import annotations

from uuid import uuid4

from bench.chat.channels import channel_costs
from pawhub.resources import open_redis
from realtime.channel_flavours import SHARDED, detect_flavour


async def test_every_phase_is_measured_and_nothing_stays_subscribed(redis_url: str) -> None:
    prefix = f"bench-channels-test-{uuid4().hex[:8]}"
    costs = await channel_costs(redis_url, 30, prefix)
    assert costs.subscribe > 0 and costs.unsubscribe > 0 and costs.resubscribe > 0
    redis = open_redis(redis_url)
    try:
        if await detect_flavour(redis) is SHARDED:
            left = await redis.pubsub_shardchannels(f"{prefix}:*")
        else:
            left = await redis.pubsub_channels(f"{prefix}:*")
        assert left == []
    finally:
        await redis.aclose()
