"""Room channels on one Redis: subscriptions asked together share one (S)SUBSCRIBE, and each is
still confirmed to its caller; a reconnect subscribes every room again in as few."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID, uuid4

import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from realtime import room_channels
from realtime.redis_text import text
from realtime.room_channels import RoomChannels
from tests.waiting import eventually


@asynccontextmanager
async def listening(
    redis: aioredis.Redis, heard: list[bytes], late: list[UUID]
) -> AsyncIterator[RoomChannels]:
    """Room channels of their own prefix, listening; `heard` gets each publication and `late`
    each room confirmed after its caller stopped waiting (a resubscription)."""

    async def publication(data: bytes) -> None:
        heard.append(data)

    channels = RoomChannels(redis, f"test-{uuid4().hex[:8]}", "r1", publication, late.append)
    await channels.start()
    try:
        await eventually(lambda: channels.listening, "listening")
        yield channels
    finally:
        await channels.stop()


def noting(pubsub: PubSub, method: str) -> list[tuple[Any, ...]]:
    """The arguments of each call of the listener's `method` from now on."""
    calls: list[tuple[Any, ...]] = []
    send = getattr(pubsub, method)

    async def noted(*names: Any) -> Any:
        calls.append(names)
        return await send(*names)

    setattr(pubsub, method, noted)
    return calls


async def test_subscriptions_asked_together_share_one_command_and_are_each_confirmed(
    redis: aioredis.Redis,
) -> None:
    heard: list[bytes] = []
    confirmed_late: list[UUID] = []
    async with listening(redis, heard, confirmed_late) as channels:
        flavour = await channels.flavour()
        commands = noting(channels._pubsub, flavour.subscribe)
        rooms = [uuid4() for _ in range(50)]

        assert all(await asyncio.gather(*(channels.subscribe(room) for room in rooms)))
        assert commands == [tuple(channels.channel(room) for room in rooms)]

        for room in rooms:
            await redis.execute_command(flavour.publish, channels.channel(room), str(room))
        expected = sorted(str(room).encode() for room in rooms)
        await eventually(lambda: sorted(heard) == expected, "every room heard")
        assert confirmed_late == []


async def test_a_reconnect_subscribes_every_room_again_a_chunk_a_command(
    redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once, by the listener: redis-py's own reconnect would first send all of them in one."""
    monkeypatch.setattr(room_channels, "_CHANNELS_PER_COMMAND", 4)
    resubscribed: list[UUID] = []
    async with listening(redis, [], resubscribed) as channels:
        flavour = await channels.flavour()
        rooms = [uuid4() for _ in range(10)]
        assert all(await asyncio.gather(*(channels.subscribe(room) for room in rooms)))
        ours = {channels.channel(room) for room in rooms}
        commands: list[tuple[str, ...]] = []
        send = getattr(PubSub, flavour.subscribe)

        async def noted(pubsub: PubSub, *names: Any) -> Any:
            named = tuple(text(name) for name in names)
            if ours & set(named):
                commands.append(named)
            return await send(pubsub, *names)

        monkeypatch.setattr(PubSub, flavour.subscribe, noted)
        for client in await redis.client_list():
            if client["name"] == channels.listener_name:
                await redis.client_kill_filter(_id=client["id"])

        await eventually(lambda: sorted(resubscribed) == sorted(rooms), "every room again")
        assert [len(command) for command in commands] == [4, 4, 2]
        assert set().union(*commands) == ours


async def test_unsubscriptions_asked_together_share_one_command_and_spare_a_room_wanted_again(
    redis: aioredis.Redis,
) -> None:
    heard: list[bytes] = []
    async with listening(redis, heard, []) as channels:
        flavour = await channels.flavour()
        rooms = [uuid4() for _ in range(20)]
        assert all(await asyncio.gather(*(channels.subscribe(room) for room in rooms)))
        commands = noting(channels._pubsub, flavour.unsubscribe)
        kept = rooms[0]
        leaving = asyncio.gather(*(channels.unsubscribe(room) for room in rooms))
        await asyncio.sleep(0)  # each left, and waits for its batch
        assert await channels.subscribe(kept)  # wanted again before the batch went out
        await leaving

        assert commands == [tuple(channels.channel(room) for room in rooms[1:])]
        for room in rooms:
            await redis.execute_command(flavour.publish, channels.channel(room), str(room))
        await eventually(lambda: heard == [str(kept).encode()], "only the kept room heard")
        await asyncio.sleep(0.2)  # what else was published had time to arrive
        assert heard == [str(kept).encode()]
