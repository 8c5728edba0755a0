"""A member who leaves over REST is taken out of the room by the replicas hosting it, and only
those hear of it: the API's outbox relay publishes the leave on the room's own channel (no
replica listens to every domain event), and a leave whose publication a replica missed is found
by the membership check that follows every resubscription of its room channels."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any
from uuid import UUID

import asyncpg
import pytest
import redis.asyncio as aioredis

from domain.chat.conversations import LEFT_REASON, leave_conversation
from domain.chat.messages import NewMessage, store_messages
from domain.chat.room_channel import RELAY_ORIGIN, Kind, relay_to_room
from domain.identity.tokens import Principal
from domain.outbox import events_channel, relay
from pawhub.settings import Settings
from realtime.delivery import OrderedDelivery
from realtime.fanout import RoomFanout
from realtime.room_reads import RoomReads
from tests.realtime.replicas import Heard, Hearing, clients, new_room, replicas, send
from tests.waiting import eventually


@pytest.fixture
def hearing(monkeypatch: pytest.MonkeyPatch) -> Hearing:
    heard = Hearing()
    monkeypatch.setattr(RoomFanout, "_receive", heard.record())
    return heard


async def test_a_leave_is_told_only_to_the_replicas_hosting_the_room(
    settings: Settings, pool: asyncpg.Pool, make_user: Any, redis: aioredis.Redis, hearing: Hearing
) -> None:
    namespace = settings.redis_namespace
    room_id, owner, vet = await new_room(pool, make_user)
    other_room, other_owner, _ = await new_room(pool, make_user)
    async with replicas(settings, count=3) as (first, second, third), clients() as connect:
        alice, bob = await connect(first, owner[1]), await connect(second, vet[1])
        carol = await connect(third, other_owner[1])
        for client, joined in ((alice, room_id), (bob, room_id), (carol, other_room)):
            assert (await client.call("join", {"room": str(joined)}))["ok"]
        [(_, listening)] = await redis.pubsub_numsub(events_channel(namespace))
        assert listening == 0  # no hub replica receives every domain event

        async with pool.acquire() as conn:
            await leave_conversation(conn, room_id, vet[0].id)
            # The API's periodic relay may take the event first: it relays it the same way.
            await relay(
                conn, redis, events_channel(namespace), partial(relay_to_room, redis, namespace)
            )
        [removed] = await bob.wait_for("removed", 1, timeout=20)
        assert removed == {"room": str(room_id), "reason": LEFT_REASON}

        def removals() -> list[Heard]:
            return [h for h in hearing.log if h.room == room_id and h.kind is Kind.removal]

        await eventually(lambda: len({h.replica for h in removals()}) == 2, "both hosts told")
        await asyncio.sleep(0.2)
        assert {h.origin for h in removals()} == {RELAY_ORIGIN.encode()}
        assert len({h.replica for h in removals()}) == 2  # the two hosting it; not the third
        refused = await bob.call("send", {"room": str(room_id), "client_id": "b", "body": "?"})
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
        assert alice.received["removed"] == carol.received["removed"] == []


async def test_a_leave_whose_publication_was_missed_is_found_after_resubscribing(
    settings: Settings, pool: asyncpg.Pool, room: Any, redis: aioredis.Redis
) -> None:
    room_id, owner, vet = room
    listeners = f"{settings.redis_namespace}:chat:fanout:replica:"
    async with replicas(settings) as (first, second), clients() as connect:
        alice, bob = await connect(first, owner[1]), await connect(second, vet[1])
        for client in (alice, bob):
            assert (await client.call("join", {"room": str(room_id)}))["ok"]
        # The leave is committed but never published (as if Redis dropped it): only the check
        # against PostgreSQL after a resubscription can take the vet out.
        await pool.execute(
            "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
            room_id,
            vet[0].id,
        )
        killed = 0
        for connection in await redis.client_list():
            if connection["name"].startswith(listeners):
                killed += await redis.client_kill_filter(_id=connection["id"])
        assert killed >= 2

        [removed] = await bob.wait_for("removed", 1, timeout=20)
        assert removed == {"room": str(room_id), "reason": LEFT_REASON}
        assert alice.received["removed"] == []


@pytest.mark.parametrize("moment", ["open-room-read", "opening-read", "catching-up"])
async def test_a_leave_relayed_while_its_member_joins_refuses_the_join(
    settings: Settings,
    pool: asyncpg.Pool,
    room: Any,
    redis: aioredis.Redis,
    hearing: Hearing,
    monkeypatch: pytest.MonkeyPatch,
    moment: str,
) -> None:
    """The vet leaves while their join is under way, and the leave is relayed before the join
    completes: the join is refused and the room's messages do not reach them. The leave comes
    just after the join read the membership, in a room another member kept hosted or one this
    join opened (subscribing its channel, then reading the membership with the room's cursor:
    a read before the subscription would miss the relayed leave), or while the join caught the
    replica up to its `since_seq` from PostgreSQL."""
    room_id, owner, vet = room
    namespace = settings.redis_namespace

    def removal_heard() -> bool:
        return any(h.room == room_id and h.kind is Kind.removal for h in hearing.log)

    async def leave() -> None:
        async with pool.acquire() as conn:
            await leave_conversation(conn, room_id, vet[0].id)
            await relay(
                conn, redis, events_channel(namespace), partial(relay_to_room, redis, namespace)
            )
        for _ in range(100):  # code that missed the publication would wait forever
            if removal_heard():
                break
            await asyncio.sleep(0.05)

    read_access, catch_up = RoomReads.access, OrderedDelivery.catch_up

    async def leave_after_the_read(reads: RoomReads, room: UUID, user: UUID | None) -> Any:
        access = await read_access(reads, room, user)
        if user == vet[0].id:
            await leave()
        return access

    async def leave_after_catching_up(delivery: OrderedDelivery, *given: Any) -> None:
        await catch_up(delivery, *given)
        await leave()

    if moment == "catching-up":
        monkeypatch.setattr(OrderedDelivery, "catch_up", leave_after_catching_up)
    else:
        monkeypatch.setattr(RoomReads, "access", leave_after_the_read)
    async with replicas(settings, count=1) as (hub,), clients() as connect:
        alice, bob = await connect(hub, owner[1]), await connect(hub, vet[1])
        joining = {"room": str(room_id)}
        if moment != "opening-read":
            assert (await alice.call("join", joining))["ok"]
        if moment == "catching-up":  # stored without this replica hearing of it
            author = Principal(user_id=owner[0].id, name=owner[0].name, role=owner[0].role)
            await store_messages(pool, [NewMessage(room_id, author, "elsewhere", "hi")])
            joining["since_seq"] = 1  # seen on a replica that died before publishing it
        refused = await bob.call("join", joining)
        assert removal_heard()
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden", refused

        if moment == "opening-read":
            assert (await alice.call("join", joining))["ok"]
        await send(alice, room_id, "after-the-leave")
        await alice.wait_for("message", 1)
        await asyncio.sleep(0.3)  # the message went out to the room's sockets together
        assert bob.received["message"] == []


async def test_a_leave_lost_while_the_listener_reconnects_during_a_join_refuses_it(
    settings: Settings,
    pool: asyncpg.Pool,
    room: Any,
    redis: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The vet's join reads their membership; then they leave, the publication is lost (the
    replica's listener is reconnecting) and the channel is subscribed again before the join
    completes. The check after resubscribing sees only members already in the room: the join
    itself reads the membership again and is refused."""
    room_id, owner, vet = room
    listeners = f"{settings.redis_namespace}:chat:fanout:replica:"
    resubscribed = asyncio.Event()
    note_resubscribed, read_access = RoomFanout._resubscribed, RoomReads.access

    def noting(fanout: RoomFanout, room: UUID) -> None:
        note_resubscribed(fanout, room)
        if room == room_id:
            resubscribed.set()

    async def leave_unheard_after_the_read(reads: RoomReads, room: UUID, user: UUID | None) -> Any:
        access = await read_access(reads, room, user)
        if user == vet[0].id and not resubscribed.is_set():
            await pool.execute(  # committed, never published
                "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
                room_id,
                vet[0].id,
            )
            for connection in await redis.client_list():
                if connection["name"].startswith(listeners):
                    await redis.client_kill_filter(_id=connection["id"])
            await asyncio.wait_for(resubscribed.wait(), 20)
        return access

    monkeypatch.setattr(RoomFanout, "_resubscribed", noting)  # before the replica binds it
    monkeypatch.setattr(RoomReads, "access", leave_unheard_after_the_read)
    async with replicas(settings, count=1) as (hub,), clients() as connect:
        alice, bob = await connect(hub, owner[1]), await connect(hub, vet[1])
        assert (await alice.call("join", {"room": str(room_id)}))["ok"]
        refused = await bob.call("join", {"room": str(room_id)}, timeout=30)
        assert resubscribed.is_set()
        assert refused["ok"] is False and refused["error"]["code"] == "forbidden", refused
        await send(alice, room_id, "after-the-leave")
        await alice.wait_for("message", 1)
        await asyncio.sleep(0.3)  # the message went out to the room's sockets together
        assert bob.received["message"] == []
