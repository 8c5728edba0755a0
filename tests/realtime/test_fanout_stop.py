"""The fan-out's background loops stop even when a redis-py await swallows the cancellation
meant for them (Python 3.11's `asyncio.wait_for`, which redis-py uses, returns the result of a
future that finished as the cancellation came): a hub's shutdown used to wait for ever on the
publisher. Each loop is made to meet such an await, then stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from realtime.bus import Subscription
from realtime.channel_flavours import Flavour
from realtime.outbox import Outbox
from realtime.room_channels import RoomChannels

STOPS_WITHIN_S = 3.0


@pytest.fixture
def swallowing_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every pub/sub read swallows a cancellation, as the race does; counts those swallowed."""
    swallowed: list[int] = []
    read = PubSub.get_message

    async def get_message(self: PubSub, *args: Any, **kwargs: Any) -> Any:
        try:
            return await read(self, *args, **kwargs)
        except asyncio.CancelledError:
            swallowed.append(1)
            return None

    monkeypatch.setattr(PubSub, "get_message", get_message)
    return swallowed


async def _ignore(*_: Any) -> None:
    return None


async def test_the_room_channels_listener_stops(
    redis: aioredis.Redis, swallowing_reads: list[int]
) -> None:
    channels = RoomChannels(redis, f"stop-{uuid4().hex[:8]}", "r", _ignore, lambda _: None)
    await channels.start()
    while not channels.listening:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # in its read
    assert await stops_in_time(channels.stop())
    assert swallowed_once(swallowing_reads)


async def test_a_shared_channel_subscription_stops(
    redis: aioredis.Redis, swallowing_reads: list[int]
) -> None:
    subscription = Subscription(redis, f"stop-{uuid4().hex[:8]}", _ignore)
    await subscription.start()
    await asyncio.wait_for(subscription.subscribed.wait(), STOPS_WITHIN_S)
    await asyncio.sleep(0.1)
    assert await stops_in_time(subscription.stop())
    assert swallowed_once(swallowing_reads)


async def test_the_publisher_stops(redis: aioredis.Redis) -> None:
    channels = RoomChannels(redis, f"stop-{uuid4().hex[:8]}", "r", _ignore, lambda _: None)
    publishing = asyncio.Event()
    swallowed: list[int] = []

    async def flavour() -> Flavour:  # the publisher's first await of a batch
        publishing.set()
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            swallowed.append(1)
        return await RoomChannels.flavour(channels)

    channels.flavour = flavour  # type: ignore[method-assign]
    outbox = Outbox(redis, channels)
    outbox.start()
    outbox.put(uuid4(), "r|room|{}")
    await asyncio.wait_for(publishing.wait(), STOPS_WITHIN_S)
    assert await stops_in_time(outbox.stop())
    assert swallowed == [1]


async def stops_in_time(stop: Coroutine[Any, Any, None]) -> bool:
    """Whether `stop` finishes within STOPS_WITHIN_S (waited for, never cancelled: a stop
    that suppresses its own cancellation would look finished to wait_for)."""
    stopping = asyncio.create_task(stop)
    done, _ = await asyncio.wait({stopping}, timeout=STOPS_WITHIN_S)
    if not done:
        stopping.cancel()
    return bool(done)


def swallowed_once(swallowed: list[int]) -> bool:
    """The loop met the swallowing read (so the test tested something) and stopped anyway."""
    return len(swallowed) == 1
