"""Fan-out by room between two hub replicas in this process: a replica hears only the rooms it
hosts, a room on both is delivered exactly once in order, leaving unsubscribes, a join catches
up without a gap, and moderators watch a room from another replica."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from domain.chat.messages import store_message
from domain.identity import Role
from domain.identity.tokens import Principal
from pawhub.settings import Settings
from realtime import delivery
from realtime.fanout import RoomFanout
from realtime.presence_news import ANNOUNCE_DELAY_S
from tests.realtime.replicas import (
    Hearing,
    channel_of,
    channels_like,
    clients,
    new_room,
    received,
    replicas,
    send,
    subscribers,
)
from tests.recording_client import ChatClient, ModeratorClient
from tests.waiting import eventually


@pytest.fixture
def hearing(monkeypatch: pytest.MonkeyPatch) -> Hearing:
    """What the replicas this test starts receive from Redis, room by room."""
    heard = Hearing()
    monkeypatch.setattr(RoomFanout, "_receive", heard.record())
    return heard


@pytest.fixture
def no_safety_nets(monkeypatch: pytest.MonkeyPatch) -> None:
    """No periodic resync and no gap closing within a test: a message that misses its
    publication stalls its room, so only the path under test can deliver it."""
    monkeypatch.setattr(delivery, "_RESYNC_EVERY_S", 3600.0)
    monkeypatch.setattr(delivery, "_GAP_WAIT_S", 3600.0)


async def test_a_replica_hears_nothing_of_a_room_it_does_not_host(
    settings: Settings, pool: asyncpg.Pool, make_user: Any, redis: aioredis.Redis, hearing: Hearing
) -> None:
    first_room, second_room = await new_room(pool, make_user), await new_room(pool, make_user)
    async with replicas(settings) as (first, second), clients() as connect:
        alice = await connect(first, first_room[1][1])
        carol = await connect(second, second_room[1][1])
        assert (await alice.call("join", {"room": str(first_room[0])}))["ok"]
        assert (await carol.call("join", {"room": str(second_room[0])}))["ok"]
        assert await subscribers(redis, channel_of(settings, first_room[0])) == 1
        assert await subscribers(redis, channel_of(settings, second_room[0])) == 1

        for index in range(30):
            await send(alice, first_room[0], f"a{index}")
        await send(carol, second_room[0], "c")

        # Each replica hears its own publications back; once all 31 messages are back, a replica
        # subscribed to the other's room would have heard those too.
        async def all_echoed() -> bool:
            rooms = (first_room[0], second_room[0])
            return [hearing.own_messages(room) for room in rooms] == [30, 1]

        await eventually(all_echoed, "every publication back at its own replica")
        await asyncio.sleep(0.2)
        assert hearing.foreign(first_room[0]) == hearing.foreign(second_room[0]) == 0
        assert alice.seqs() == list(range(1, 31)) and carol.seqs() == [1]


async def test_an_arrival_is_published_only_when_someone_else_is_online_to_hear_it(
    settings: Settings, room: Any, hearing: Hearing
) -> None:
    room_id, owner, vet = room
    async with replicas(settings) as (first, second), clients() as connect:
        alice = await connect(first, owner[1])
        assert (await alice.call("join", {"room": str(room_id)}))["ok"]
        await asyncio.sleep(ANNOUNCE_DELAY_S * 4)  # an announcement of alice is out by now
        await send(alice, room_id, "after")

        # The message went out on the room's channel after any announcement of alice's arrival.
        async def echoed() -> bool:
            return hearing.own_messages(room_id) == 1

        await eventually(echoed, "the message back at its replica")
        assert hearing.events(room_id) == 0

        bob = await connect(second, vet[1])
        assert (await bob.call("join", {"room": str(room_id)}))["ok"]
        [online] = await alice.wait_for("presence", 1)
        assert online == {"room": str(room_id), "user_id": str(vet[0].id), "online": True}

        async def heard_by_both() -> bool:
            return hearing.events(room_id) == 2  # bob's arrival, back at his replica too

        await eventually(heard_by_both, "bob's arrival heard by both replicas")


async def test_a_room_on_both_replicas_gets_every_message_once_in_order_and_leaving_unsubscribes(
    settings: Settings, room: Any, redis: aioredis.Redis, hearing: Hearing
) -> None:
    room_id, owner, vet = room
    channel = channel_of(settings, room_id)
    async with replicas(settings) as (first, second), clients() as connect:
        alice, bob = await connect(first, owner[1]), await connect(second, vet[1])
        for client in (alice, bob):
            assert (await client.call("join", {"room": str(room_id)}))["ok"]
        assert await subscribers(redis, channel) == 2
        applied = received("applied")

        async def burst(client: ChatClient, who: str) -> None:
            for batch in range(4):
                await asyncio.gather(
                    *(send(client, room_id, f"{who}{batch}-{i}") for i in range(10))
                )

        await asyncio.gather(burst(alice, "a"), burst(bob, "b"))
        for client in (alice, bob):
            await client.wait_for("message", 80)
            assert client.seqs() == list(range(1, 81))
        assert received("applied") - applied >= 80  # each replica applied the other's 40

        assert (await bob.call("leave", {"room": str(room_id)}))["ok"]
        await alice.wait_for("presence", 2)  # bob online, then offline: published before

        async def only_the_first() -> bool:
            return await subscribers(redis, channel) == 1

        await eventually(only_the_first, "the second replica unsubscribed after its member left")
        own, foreign = hearing.own_messages(room_id), hearing.foreign(room_id)
        await send(alice, room_id, "after")

        async def echoed() -> bool:
            return hearing.own_messages(room_id) - own == 1

        await eventually(echoed, "the publication back at its replica")
        await asyncio.sleep(0.2)
        assert hearing.foreign(room_id) == foreign
        assert len(bob.received["message"]) == 80

        await alice.close()  # a disconnect leaves every room

        async def none_left() -> bool:
            return await channels_like(redis, channel) == []

        await eventually(none_left, "no replica listening to the room once all left")


async def test_a_join_while_the_room_is_busy_misses_nothing_and_repeats_nothing(
    settings: Settings, room: Any, redis: aioredis.Redis, no_safety_nets: None
) -> None:
    """Each join opens the room afresh on the second replica while the first sends: the
    channel is subscribed (and confirmed) before the newest seq is read, so what the ack's
    `missed` ends with is followed live by the very next seq, whatever the timing."""
    room_id, owner, vet = room
    channel = channel_of(settings, room_id)
    async with replicas(settings) as (first, second), clients() as connect:
        alice = await connect(first, owner[1])
        assert (await alice.call("join", {"room": str(room_id)}))["ok"]
        acked: list[int] = []
        sending = True

        async def send_continuously() -> None:
            while sending:
                acked.append(await send(alice, room_id, f"m{len(acked)}"))

        async def some_sent() -> bool:
            return len(acked) >= 5

        sender = asyncio.create_task(send_continuously())
        try:
            for _ in range(8):
                await eventually(some_sent, "sending")
                bob = await connect(second, vet[1])
                since = max(0, len(acked) - 10)
                joined = await bob.call("join", {"room": str(room_id), "since_seq": since})
                missed = [message["seq"] for message in joined["missed"]]
                assert missed == list(range(since + 1, joined["last_seq"] + 1))
                await bob.wait_for("message", 15)
                live = bob.seqs()
                first_live = joined["last_seq"] + 1
                assert live == list(range(first_live, first_live + len(live)))
                await bob.close()

                async def closed_here() -> bool:
                    return await subscribers(redis, channel) == 1

                await eventually(closed_here, "the second replica closed the room")
        finally:
            sending = False
            await sender


async def test_a_moderator_watches_a_room_hosted_on_another_replica(
    settings: Settings, room: Any, make_user: Any, redis: aioredis.Redis
) -> None:
    room_id, owner, vet = room
    channel = channel_of(settings, room_id)
    _, moderator_token = await make_user(Role.moderator, "Mo Derator")
    async with replicas(settings) as (first, second), clients() as connect:
        alice, bob = await connect(first, owner[1]), await connect(first, vet[1])
        for client in (alice, bob):
            assert (await client.call("join", {"room": str(room_id)}))["ok"]
        await send(alice, room_id, "rude", "you useless quack")
        [rude] = await bob.wait_for("message", 1)
        report = {"room": str(room_id), "id": rude["id"], "reason": "rude"}
        assert (await bob.call("report", report))["ok"]

        moderator = await connect(second, moderator_token, ModeratorClient)
        watched = await moderator.call("watch", {"room": str(room_id)})
        assert watched["ok"] and [m["seq"] for m in watched["messages"]] == [1]
        assert await subscribers(redis, channel) == 2

        await send(alice, room_id, "again", "sorry")
        [second_message] = await moderator.wait_for("message", 1)
        assert second_message["seq"] == 2 and second_message["body"] == "sorry"
        edit = {"room": str(room_id), "id": second_message["id"], "body": "sorry, truly"}
        assert (await alice.call("edit", edit))["ok"]
        [edited] = await moderator.wait_for("message_edited", 1)
        assert edited["body"] == "sorry, truly"
        delete = {"room": str(room_id), "id": second_message["id"]}
        assert (await alice.call("delete", delete))["ok"]
        [deleted] = await moderator.wait_for("message_deleted", 1)
        assert deleted == {"room": str(room_id), "id": second_message["id"], "seq": 2}

        assert (await moderator.call("unwatch", {"room": str(room_id)}))["ok"]

        async def only_the_first() -> bool:
            return await subscribers(redis, channel) == 1

        await eventually(only_the_first, "the watcher's replica unsubscribed")
        await send(alice, room_id, "unwatched")
        await bob.wait_for("message", 3)
        with contextlib.suppress(TimeoutError):
            await moderator.wait_for("message", 2, timeout=0.5)
        assert len(moderator.received["message"]) == 1


async def test_a_client_that_saw_more_than_the_replica_delivered_gets_nothing_twice(
    settings: Settings, pool: asyncpg.Pool, room: Any, no_safety_nets: None
) -> None:
    """A replica that dies after storing and delivering a message, before its publication
    reaches Redis, leaves the other replica behind its own clients. One of them rejoining there
    with since_seq past the replica's cursor has the room caught up first: the members already
    there get the message, and the rejoining client does not get it again live."""
    room_id, owner, vet = room
    async with replicas(settings, count=1) as (hub,), clients() as connect:
        bob = await connect(hub, vet[1])
        assert (await bob.call("join", {"room": str(room_id)}))["ok"]
        sender = Principal(user_id=owner[0].id, name=owner[0].name, role=owner[0].role)
        unpublished, _ = await store_message(pool, room_id, sender, "lost", "never published")

        alice = await connect(hub, owner[1])
        joined = await alice.call("join", {"room": str(room_id), "since_seq": unpublished.seq})
        assert (joined["last_seq"], joined["missed"]) == (unpublished.seq, [])
        await bob.wait_for("message", 1)
        assert bob.seqs() == [unpublished.seq]

        after = await send(alice, room_id, "next")
        await alice.wait_for("message", 1)
        assert alice.seqs() == [after] == [unpublished.seq + 1]
