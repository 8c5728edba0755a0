"""A real moderation scoring worker (its own process pool) running beside a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import redis.asyncio as aioredis

from moderation.classifier import Classifier
from moderation.learned_model import LearnedClassifier
from moderation.pipeline import ScoringWorker
from pawhub.resources import open_pool, open_redis
from pawhub.settings import Settings
from pawhub.worker import thresholds_of

# The test database is shared by modules that each hand messages off on a stream of their own:
# a worker that swept it for messages whose hand-off was lost would score (and flag on its own
# stream) other modules' messages. Only tests/security/test_moderation_integrity.py sweeps (it
# plants messages a year old): nothing else is a century old.
NO_SWEEP_S = 100 * 365 * 86_400.0


@contextlib.asynccontextmanager
async def running_scoring_worker(
    settings: Settings,
    classifier: Callable[[], Classifier] = LearnedClassifier,
    *,
    batch_size: int = 64,
    sweep_after: float = NO_SWEEP_S,
) -> AsyncIterator[None]:
    """A worker scoring `settings`'s stream with `classifier` (the shipped model unless told).
    Stop what shares its event loop first: its process pool blocks the loop as it shuts down."""
    assert settings.database_url and settings.redis_url
    pool = await open_pool(settings.database_url, min_size=1, max_size=4)
    redis: aioredis.Redis = open_redis(settings.redis_url)
    stop = asyncio.Event()
    worker = ScoringWorker(
        pool,
        redis,
        settings.redis_namespace,
        classifier,
        thresholds_of(settings),
        "test-worker",
        batch_size=batch_size,
        sweep_after=sweep_after,
    )
    task = asyncio.create_task(worker.run(stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await redis.aclose()
        await pool.close()
