"""A Redis pub/sub subscription that survives Redis: it logs, backs off (at most 2 s) and
resubscribes forever, and tells its owner each time it is subscribed again so the owner can
catch up on what it may have missed.

It avoids the known failure modes of pub/sub listeners: it never dies silently (every error is
caught, logged and retried), and its connection has socket and connect timeouts plus a
health-check PING (see pawhub.resources.open_redis), so a dead or half-open connection raises
instead of hanging forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio.cluster import RedisCluster

from domain.redis_client import RedisClient
from realtime.background import BackgroundTask

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 2.0


class Subscription:
    def __init__(
        self,
        redis: RedisClient,
        channel: str,
        on_message: Callable[[bytes], Awaitable[None]],
        on_subscribed: Callable[[], Awaitable[None]] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self._redis = redis
        self.channel = channel
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._on_lost = on_lost
        self.subscribed = asyncio.Event()
        self._listener = BackgroundTask(f"subscribe {channel}", self._listen_forever)

    async def start(self) -> None:
        self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()

    async def _handle(self, data: bytes) -> None:
        try:
            await self._on_message(data)
        except Exception:  # one bad publication must not cost the subscription
            log.exception("handling a publication on %s failed", self.channel)

    async def _listen_forever(self) -> None:
        backoff = 0.1
        task = asyncio.current_task()
        assert task is not None
        while not task.cancelling():
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.subscribed.set()
                    backoff = 0.1
                    log.info("subscribed to %s", self.channel)
                    if self._on_subscribed is not None:
                        await self._on_subscribed()
                    # Python 3.11's wait_for, inside redis-py, may swallow the cancellation
                    # that stops this loop (see realtime.background): ask after each read.
                    while not task.cancelling():
                        publication = await pubsub.get_message(timeout=1.0)
                        if publication is not None:
                            await self._handle(publication["data"])
                raise asyncio.CancelledError
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.subscribed.is_set():
                    log.warning("lost Redis subscription %s (%s); resubscribing", self.channel, exc)
                    if self._on_lost is not None:
                        self._on_lost()
                self.subscribed.clear()
                await asyncio.sleep(backoff)
                if isinstance(self._redis, RedisCluster):  # the channel's node may have failed over
                    # No node answering raises RedisClusterException, not a RedisError: the
                    # next round tries again.
                    with contextlib.suppress(Exception):
                        await self._redis.nodes_manager.initialize()
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
        raise asyncio.CancelledError
