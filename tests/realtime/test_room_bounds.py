"""What one connection can make a replica listen to is bounded: rooms joined and rooms watched
per connection (so a replica's room channels are bounded by its connections), each refused
past its bound with `too_large`, the connection staying up."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import asyncpg
import pytest
import redis.asyncio as aioredis

from domain.chat.conversations import create_conversation
from domain.identity import Role
from pawhub.settings import Settings
from realtime import fanout
from tests.realtime.replicas import channel_of, send, subscribers
from tests.recording_client import ModeratorClient
from tests.waiting import eventually


async def rooms_of(pool: asyncpg.Pool, owner: Any, vet: Any, count: int) -> list[UUID]:
    async with pool.acquire() as conn:
        return [
            (await create_conversation(conn, owner[0].id, [vet[0].id], f"room {n}")).id
            for n in range(count)
        ]


async def test_a_connection_joins_at_most_so_many_rooms(
    settings: Settings,
    pool: asyncpg.Pool,
    make_user: Any,
    connect: Any,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout, "MAX_ROOMS_PER_CONNECTION", 2)
    owner, vet = await make_user(Role.owner), await make_user(Role.vet)
    first, second, third = await rooms_of(pool, owner, vet, 3)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        alice = await connect(owner[1])
        for room in (first, second):
            assert (await alice.call("join", {"room": str(room)}))["ok"]
        refused = await alice.call("join", {"room": str(third)})
        assert refused["ok"] is False and refused["error"]["code"] == "too_large"
        assert await subscribers(redis, channel_of(settings, third)) == 0
        assert (await alice.call("join", {"room": str(first)}))["ok"]  # again: not one more

        assert (await alice.call("leave", {"room": str(first)}))["ok"]
        assert (await alice.call("join", {"room": str(third)}))["ok"]

        async def only_joined_rooms_heard() -> bool:
            counts = [await subscribers(redis, channel_of(settings, r)) for r in (first, third)]
            return counts == [0, 1]

        await eventually(only_joined_rooms_heard, "the left room unsubscribed, the new one not")
        assert await send(alice, third, "still connected") == 1

        # Joins in flight at once are counted as they land: still at most two.
        device = await connect(owner[1])
        acks = await asyncio.gather(
            *(device.call("join", {"room": str(room)}) for room in (first, second, third))
        )
        assert sorted(ack["ok"] for ack in acks) == [False, True, True]
        assert [ack["error"]["code"] for ack in acks if not ack["ok"]] == ["too_large"]
    finally:
        await redis.aclose()


async def test_a_moderator_connection_watches_at_most_so_many_rooms(
    pool: asyncpg.Pool,
    make_user: Any,
    connect: Any,
    chat_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout, "MAX_WATCHED_PER_CONNECTION", 1)
    owner, vet = await make_user(Role.owner), await make_user(Role.vet)
    rooms = await rooms_of(pool, owner, vet, 2)
    alice = await connect(owner[1])
    for number, room in enumerate(rooms):  # a flag in each, so moderators may watch them
        assert (await alice.call("join", {"room": str(room)}))["ok"]
        message_seq = await send(alice, room, f"m{number}", "you useless quack")
        [message] = [
            m for m in await alice.wait_for("message", number + 1) if m["room"] == str(room)
        ]
        assert message["seq"] == message_seq
        report = {"room": str(room), "id": message["id"], "reason": "rude"}
        assert (await alice.call("report", report))["ok"]

    _, token = await make_user(Role.moderator, "Mo Derator")
    moderator = await ModeratorClient.connect(chat_url, token)
    try:
        assert (await moderator.call("watch", {"room": str(rooms[0])}))["ok"]
        refused = await moderator.call("watch", {"room": str(rooms[1])})
        assert refused["ok"] is False and refused["error"]["code"] == "too_large"
        assert (await moderator.call("unwatch", {"room": str(rooms[0])}))["ok"]
        assert (await moderator.call("watch", {"room": str(rooms[1])}))["ok"]
    finally:
        await moderator.close()
