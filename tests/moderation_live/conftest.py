from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from domain.identity import Role, User
from moderation.learned_model import LearnedClassifier
from moderation.pipeline import ScoringWorker
from pawhub.resources import open_pool, open_redis
from pawhub.settings import Settings
from pawhub.worker import thresholds_of
from tests.moderation_live.claims_helpers import Moderator, OpenModerator
from tests.recording_client import ModeratorClient

# The test database is shared by modules that each hand messages off on a stream of their own:
# a worker that swept it for messages whose hand-off was lost would score (and flag on its own
# stream) other modules' messages. Only tests/security/test_moderation_integrity.py sweeps (it
# plants messages a year old): nothing here is a century old.
NO_SWEEP_S = 100 * 365 * 86_400.0


@contextlib.asynccontextmanager
async def running_scoring_worker(settings: Settings) -> AsyncIterator[None]:
    """A real scoring worker (its own process pool) with the shipped default model, on
    `settings`'s stream."""
    assert settings.database_url and settings.redis_url
    pool = await open_pool(settings.database_url, min_size=1, max_size=4)
    redis: aioredis.Redis = open_redis(settings.redis_url)
    stop = asyncio.Event()
    worker = ScoringWorker(
        pool,
        redis,
        settings.redis_namespace,
        LearnedClassifier,
        thresholds_of(settings),
        "test-worker",
        batch_size=64,
        sweep_after=NO_SWEEP_S,
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


@pytest.fixture(scope="session")
async def scoring_worker(settings: Settings) -> AsyncIterator[None]:
    """A scoring worker for the test run's stream."""
    async with running_scoring_worker(settings):
        yield


@pytest.fixture
async def open_moderator(chat_url: str, make_user: Any) -> AsyncIterator[OpenModerator]:
    """Connect (and subscribe) a moderator, a new one unless `user` and `token` are given."""
    clients: list[ModeratorClient] = []

    async def open_one(
        name: str = "Mo Derator", url: str = chat_url, account: tuple[User, str] | None = None
    ) -> Moderator:
        user, token = account or await make_user(Role.moderator, name)
        client = await ModeratorClient.connect(url, token)
        clients.append(client)
        assert (await client.call("subscribe", {}))["ok"]
        return user, client

    yield open_one
    for client in clients:
        if client.sio.connected:
            await client.close()
