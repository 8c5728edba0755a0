"""Fixtures of the realtime tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from pawhub.resources import open_redis


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the test run's Redis, set up as the servers' are."""
    client = open_redis(redis_url)
    yield client
    await client.aclose()
