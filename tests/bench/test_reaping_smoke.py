"""`python -m bench.chat.reaping` in small: real leases in the test's Redis, one replica's rounds
timed, and nothing of the run left behind. No timing is asserted."""

from __future__ import annotations

from uuid import uuid4

from bench.chat.reaping import reaping_round_ms
from pawhub.resources import open_redis


async def test_a_reaping_round_is_measured_and_its_leases_removed(redis_url: str) -> None:
    prefix = f"bench-reaping-test-{uuid4().hex[:8]}"
    cpu_ms, wall_ms = await reaping_round_ms(redis_url, 50, prefix)
    assert cpu_ms > 0 and wall_ms > 0
    redis = open_redis(redis_url)
    try:
        assert [key async for key in redis.scan_iter(f"{prefix}:*")] == []
    finally:
        await redis.aclose()
