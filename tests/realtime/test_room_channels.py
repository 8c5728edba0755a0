"""Room channels on one Redis: subscriptions asked together share one (S)SUBSCRIBE, and each is
still confirmed to its caller."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import redis.asyncio as aioredis

from realtime.room_channels import RoomChannels
from tests.waiting import eventually


async def test_subscriptions_asked_together_share_one_command_and_are_each_confirmed(
    redis: aioredis.Redis,
) -> None:
    heard: list[bytes] = []
    confirmed_late: list[UUID] = []

    async def publication(data: bytes) -> None:
        heard.append(data)

    channels = RoomChannels(
        redis, f"test-{uuid4().hex[:8]}", "r1", publication, confirmed_late.append
    )
    await channels.start()
    try:
        await eventually(lambda: channels.listening, "listening")
        flavour = await channels.flavour()
        commands: list[tuple[Any, ...]] = []
        send = getattr(channels._pubsub, flavour.subscribe)

        async def noted(*names: Any) -> Any:
            commands.append(names)
            return await send(*names)

        setattr(channels._pubsub, flavour.subscribe, noted)
        rooms = [uuid4() for _ in range(50)]

        assert all(await asyncio.gather(*(channels.subscribe(room) for room in rooms)))
        assert commands == [tuple(channels.channel(room) for room in rooms)]

        for room in rooms:
            await redis.execute_command(flavour.publish, channels.channel(room), str(room))
        expected = sorted(str(room).encode() for room in rooms)
        await eventually(lambda: sorted(heard) == expected, "every room heard")
        assert confirmed_late == []
    finally:
        await channels.stop()
