"""The API's periodic jobs: expired cart reservations go back to stock, and the outbox's domain
events are published to Redis. Every replica runs them; their SQL locks (SKIP LOCKED) make
that safe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from litestar import Litestar

from domain.catalog import release_expired_reservations
from domain.outbox import relay

log = logging.getLogger(__name__)

EVERY_S = 5.0


async def _run_forever(app: Litestar, channel: str) -> None:
    while True:
        await asyncio.sleep(EVERY_S)
        try:
            async with app.state.pool.acquire() as conn:
                released = await release_expired_reservations(conn)
                published = await relay(conn, app.state.redis, channel)
            if released or published:
                log.info("released %d reservations, published %d events", released, published)
        except Exception as exc:  # the next round tries again
            log.warning("periodic jobs failed: %s", exc)


def periodic_jobs(channel: str) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan running the jobs while the app runs (after the connections exist)."""

    @asynccontextmanager
    async def jobs(app: Litestar) -> AsyncIterator[None]:
        task = asyncio.create_task(_run_forever(app, channel), name="api-periodic-jobs")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return jobs
