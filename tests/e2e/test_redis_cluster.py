"""Hub replicas and the API on a real Redis Cluster (`REDIS_CLUSTER=true`, three primaries):
chat rooms whose channels live on every node carry every message across replicas in order,
presence is told across them, a consult's call is entered over `/rtc` (its state in Redis), a
member who left is taken out of the room by the outbox relay's removal on the room's shard
channel, logins are counted against their rate limits (two keys in one script), and stored
messages handed off on the moderation stream are scored by a worker and flagged. A primary killed
mid-chat fails over to its replica and nothing acknowledged is lost or delivered twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from redis.crc import key_slot

from bench.media.consults import make_video_consult
from bench.media.rtc_client import RtcClient
from domain.chat.conversations import LEFT_REASON, create_conversation, leave_conversation
from domain.chat.messages import store_message
from domain.chat.room_channel import relay_to_room
from domain.identity import Role
from domain.identity.tokens import Principal
from domain.outbox import events_channel, relay
from pawhub.resources import open_redis
from pawhub.settings import Settings
from realtime.handoff import ModerationHandoff
from tests.conftest import serve_api
from tests.e2e.hubs import close_all, start_hub_process
from tests.e2e.test_moderation_worker import flags_in, start_worker
from tests.recording_client import ChatClient
from tests.redis_cluster import RedisClusterProcesses
from tests.signaling.rtc_client import enter_call

pytestmark = pytest.mark.slow

ROOMS = 9
MESSAGES = 10  # per room and sender


def on_cluster(settings: Settings, cluster: RedisClusterProcesses) -> Settings:
    return settings.model_copy(update={"redis_url": cluster.url, "redis_cluster": True})


async def test_chat_and_presence_across_replicas_on_a_redis_cluster(
    settings: Settings, redis_cluster: RedisClusterProcesses, pool: asyncpg.Pool, make_user: Any
) -> None:
    own = on_cluster(settings, redis_cluster)
    owner, vet = await make_user(Role.owner), await make_user(Role.vet)
    rooms: list[UUID] = []
    async with pool.acquire() as conn:
        for index in range(ROOMS):
            conversation = await create_conversation(conn, owner[0].id, [vet[0].id], f"Pet {index}")
            rooms.append(conversation.id)
    nodes = Counter(
        redis_cluster.slot_owner(key_slot(f"{own.redis_namespace}:chat:fanout:{room}".encode()))
        for room in rooms
    )
    first, second = await start_hub_process(own), await start_hub_process(own)
    alice = await ChatClient.connect(first.url, owner[1])
    bob: ChatClient | None = None
    try:
        for room in rooms:
            await alice.call("join", {"room": str(room)})
        bob = await ChatClient.connect(second.url, vet[1])
        for room in rooms:
            assert (await bob.call("join", {"room": str(room)}))["ok"]
        told = await alice.wait_for("presence", ROOMS)  # across replicas, in every room
        assert {(event["room"], event["user_id"], event["online"]) for event in told} == {
            (str(room), str(vet[0].id), True) for room in rooms
        }

        sends = [
            client.call("send", {"room": str(room), "client_id": f"{who}{i}", "body": "hi"})
            for room in rooms
            for i in range(MESSAGES)
            for who, client in (("a", alice), ("b", bob))
        ]
        assert all(ack["ok"] for ack in await asyncio.gather(*sends))
        total = ROOMS * MESSAGES * 2
        for client in (alice, bob):
            received = await client.wait_for("message", total, timeout=30)
            by_room: dict[str, list[int]] = {}
            for message in received:
                by_room.setdefault(message["room"], []).append(message["seq"])
            assert by_room == {str(room): list(range(1, 2 * MESSAGES + 1)) for room in rooms}
        assert len(nodes) > 1, nodes  # the rooms' channels were spread over the primaries
    finally:
        await close_all([client for client in (alice, bob) if client], (first, second))


async def test_a_member_who_left_is_taken_out_of_the_room_on_a_redis_cluster(
    settings: Settings, redis_cluster: RedisClusterProcesses, room: Any, pool: asyncpg.Pool
) -> None:
    """The outbox relay's removal reaches the room's channel on the node owning its slot."""
    own = on_cluster(settings, redis_cluster)
    room_id, owner, vet = room
    cluster = open_redis(redis_cluster.url, cluster=True)
    hub = await start_hub_process(own)
    alice = await ChatClient.connect(hub.url, owner[1])
    bob = await ChatClient.connect(hub.url, vet[1])
    try:
        for client in (alice, bob):
            assert (await client.call("join", {"room": str(room_id)}))["ok"]
        # Left and relayed in one transaction: the test run's APIs relay to another Redis.
        async with pool.acquire() as conn, conn.transaction():
            await leave_conversation(conn, room_id, vet[0].id)
            route = partial(relay_to_room, cluster, own.redis_namespace)
            await relay(conn, cluster, events_channel(own.redis_namespace), route)
        [removed] = await bob.wait_for("removed", 1, timeout=20)
        assert removed == {"room": str(room_id), "reason": LEFT_REASON}
        assert alice.received["removed"] == []
    finally:
        await cluster.aclose()
        await close_all([alice, bob], (hub,))


async def test_a_consult_call_is_entered_on_a_redis_cluster(
    settings: Settings, redis_cluster: RedisClusterProcesses, pool: asyncpg.Pool
) -> None:
    own = on_cluster(settings, redis_cluster)
    consult = await make_video_consult(pool, own.jwt_secret, invited=0)
    first, second = await start_hub_process(own), await start_hub_process(own)
    vet = await RtcClient.connect(first.url, consult.vet.token)
    owner = await RtcClient.connect(second.url, consult.owner.token)
    try:
        await enter_call(consult, vet, [(owner, consult.owner)])  # lobby and admit, across
        joined = await vet.wait_for("peer_joined", lambda e: e["user_id"] == consult.owner.id)
        assert joined["consult_id"] == consult.id
    finally:
        await vet.close()
        await owner.close()
        first.stop()
        second.stop()


async def test_logins_are_rate_limited_on_a_redis_cluster(
    settings: Settings, redis_cluster: RedisClusterProcesses, make_user: Any
) -> None:
    user, _ = await make_user(Role.owner)
    async with (
        serve_api(on_cluster(settings, redis_cluster)) as url,
        httpx.AsyncClient(base_url=url) as api,
    ):
        good = {"email": user.email, "password": "correct horse"}
        assert (await api.post("/v1/auth/login", json=good)).status_code == 200
        statuses = [
            (await api.post("/v1/auth/login", json={**good, "password": "wrong"})).status_code
            for _ in range(30)
        ]
        assert statuses[0] == 401 and statuses[-1] == 429, statuses


async def test_messages_handed_off_on_a_redis_cluster_are_scored_and_flagged(
    settings: Settings, redis_cluster: RedisClusterProcesses, room: Any, pool: asyncpg.Pool
) -> None:
    own = on_cluster(settings, redis_cluster)
    room_id, owner, _ = room
    sender = Principal(user_id=owner[0].id, name=owner[0].name, role=owner[0].role)
    cluster = open_redis(redis_cluster.url, cluster=True)
    handoff = ModerationHandoff(cluster, own.redis_namespace)
    await handoff.start()
    worker = start_worker(own, "on-cluster")
    try:
        for i in range(20):
            message, _ = await store_message(pool, room_id, sender, f"c{i}", f"f4ck you {i}")
            handoff.submit(message)
        async with asyncio.timeout(60):
            while await flags_in(pool, room_id) < 20 or await cluster.xlen(handoff.stream):
                await asyncio.sleep(0.1)  # until flagged, acknowledged and deleted
    finally:
        worker.terminate()
        worker.wait()
        await handoff.stop()
        await cluster.aclose()


@pytest.fixture
def failing_cluster(tmp_path: Path) -> Iterator[RedisClusterProcesses]:
    """A cluster of the test's own, with a replica per primary to fail over to."""
    cluster = RedisClusterProcesses(tmp_path / "cluster", replicas=1).start()
    yield cluster
    cluster.stop()


async def test_chat_goes_on_when_a_primary_fails_over_to_its_replica(
    settings: Settings,
    failing_cluster: RedisClusterProcesses,
    pool: asyncpg.Pool,
    make_user: Any,
) -> None:
    own = on_cluster(settings, failing_cluster)
    owner, vet = await make_user(Role.owner), await make_user(Role.vet)
    async with pool.acquire() as conn:
        rooms = [
            (await create_conversation(conn, owner[0].id, [vet[0].id], f"Pet {index}")).id
            for index in range(ROOMS)
        ]
    owners = Counter(
        failing_cluster.slot_owner(key_slot(f"{own.redis_namespace}:chat:fanout:{room}".encode()))
        for room in rooms
    )
    victim, _ = owners.most_common(1)[0]  # the primary carrying the most rooms' channels
    first, second = await start_hub_process(own), await start_hub_process(own)
    alice = await ChatClient.connect(first.url, owner[1])
    bob = await ChatClient.connect(second.url, vet[1])
    sent = 0

    async def send_round() -> None:
        """A message from each member in every room, each sent until acknowledged."""
        nonlocal sent
        for room in rooms:
            for who, client in (("a", alice), ("b", bob)):
                body = {"room": str(room), "client_id": f"{who}{sent}", "body": "hi"}
                while not (await client.call("send", body))["ok"]:
                    await asyncio.sleep(0.2)
        sent += 1

    try:
        for client in (alice, bob):
            for room in rooms:
                assert (await client.call("join", {"room": str(room)}))["ok"]
        await send_round()
        failing_cluster.kill(victim)
        while not failing_cluster.failed_over(victim):  # sending all along
            await send_round()
        for _ in range(3):
            await send_round()

        for client in (alice, bob):
            received = await client.wait_for("message", ROOMS * 2 * sent, timeout=30)
            by_room: dict[str, list[int]] = {}
            for message in received:
                by_room.setdefault(message["room"], []).append(message["seq"])
            assert by_room == {str(room): list(range(1, 2 * sent + 1)) for room in rooms}

        # Presence and joins work on the promoted primary: a new connection joins every room.
        carol = await ChatClient.connect(first.url, vet[1])
        for room in rooms:
            assert (await carol.call("join", {"room": str(room)}))["ok"]
        await carol.close()
    finally:
        await close_all([alice, bob], (first, second))
