"""The API's periodic jobs: expired cart reservations go back to stock, orders unpaid past their
deadline are cancelled (PaymentIntent cancelled, stock returned), paid bookings whose fee was
never held are cancelled, and the outbox's domain events are published to Redis (a member who
left, also on the room's channel). Every replica runs them; their SQL locks (SKIP LOCKED, row
locks re-checked after each Stripe call) make that safe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from functools import partial

from litestar import Litestar

from domain.chat.room_channel import relay_to_room
from domain.commerce.payments import expire_unpaid_orders
from domain.commerce.stock import release_expired_reservations
from domain.outbox import relay
from domain.scheduling.bookings import cancel_stale_requests
from rest.commerce.payments import provide_stripe
from rest.config import settings_of

log = logging.getLogger(__name__)

EVERY_S = 5.0
# Far longer than booking and holding a fee takes; a `requested` booking older is orphaned.
STALE_REQUEST = timedelta(minutes=10)


async def run_jobs_once(app: Litestar, channel: str) -> dict[str, int]:
    """One round of every job; how much each did."""
    settings = settings_of(app.state)
    deadline = timedelta(minutes=settings.order_payment_deadline_min)
    async with app.state.pool.acquire() as conn:
        done = {
            "reservations released": await release_expired_reservations(conn),
            "orders expired": await expire_unpaid_orders(conn, provide_stripe(app.state), deadline),
            "unheld bookings cancelled": await cancel_stale_requests(conn, STALE_REQUEST),
        }
        to_rooms = partial(relay_to_room, app.state.redis, settings.redis_namespace)
        done["events published"] = await relay(conn, app.state.redis, channel, to_rooms)
    return done


async def _run_forever(app: Litestar, channel: str) -> None:
    while True:
        await asyncio.sleep(EVERY_S)
        try:
            done = await run_jobs_once(app, channel)
            if any(done.values()):
                log.info("periodic jobs: %s", ", ".join(f"{k} {v}" for k, v in done.items()))
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
