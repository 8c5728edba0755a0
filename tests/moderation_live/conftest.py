from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from moderation.default_model import VetProfanityClassifier
from moderation.pipeline import ScoringWorker
from pawhub.resources import open_pool, open_redis
from pawhub.settings import Settings
from pawhub.worker import thresholds_of


@pytest.fixture(scope="session")
async def scoring_worker(settings: Settings) -> AsyncIterator[None]:
    """A real scoring worker (its own process pool) for the test run's stream."""
    assert settings.database_url and settings.redis_url
    pool = await open_pool(settings.database_url, min_size=1, max_size=4)
    redis: aioredis.Redis = open_redis(settings.redis_url)
    stop = asyncio.Event()
    worker = ScoringWorker(
        pool,
        redis,
        settings.redis_namespace,
        VetProfanityClassifier,
        thresholds_of(settings),
        "test-worker",
        batch_size=64,
    )
    task = asyncio.create_task(worker.run(stop))
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    await redis.aclose()
    await pool.close()
