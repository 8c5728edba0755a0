"""Room channels on a real Redis Cluster (three primaries): each room is subscribed on the
primary that owns its channel's slot, publications reach the replica from every node, and a
room whose slot moves to another primary is subscribed there and caught up."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID, uuid4

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from pawhub.resources import open_redis
from realtime import cluster_channels
from realtime.cluster_channels import ClusterRoomChannels
from tests.redis_cluster import RedisClusterProcesses
from tests.waiting import eventually

ROOMS = 24


class Received:
    def __init__(self) -> None:
        self.publications: list[bytes] = []
        self.caught_up: list[UUID] = []

    async def publication(self, data: bytes) -> None:
        self.publications.append(data)


async def _publish(cluster: RedisCluster, channels: ClusterRoomChannels, rooms: list[UUID]) -> None:
    async with cluster.pipeline(transaction=False) as pipe:
        for room in rooms:
            pipe.execute_command("SPUBLISH", channels.channel(room), str(room).encode())
        assert await pipe.execute() == [1] * len(rooms)  # each heard by the replica at once


@dataclass
class Subscribed:
    cluster: RedisCluster
    channels: ClusterRoomChannels
    received: Received
    rooms: list[UUID]


@pytest.fixture
async def subscribed(
    redis_cluster: RedisClusterProcesses, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Subscribed]:
    """ROOMS rooms subscribed on the cluster by one replica's channels, rechecked every 0.2 s."""
    monkeypatch.setattr(cluster_channels, "RECHECK_S", 0.2)
    cluster = open_redis(redis_cluster.url, cluster=True)
    assert isinstance(cluster, RedisCluster)
    received = Received()
    channels = ClusterRoomChannels(
        cluster, f"test-{uuid4().hex[:8]}", "r1", received.publication, received.caught_up.append
    )
    rooms = [uuid4() for _ in range(ROOMS)]
    try:
        await channels.start()
        await eventually(lambda: channels.listening, "listening on every primary")
        assert all(await asyncio.gather(*(channels.subscribe(room) for room in rooms)))
        yield Subscribed(cluster, channels, received, rooms)
    finally:
        await channels.stop()
        await cluster.aclose()


async def test_rooms_on_every_primary_are_heard_and_a_moved_slot_follows(
    redis_cluster: RedisClusterProcesses, subscribed: Subscribed
) -> None:
    cluster, channels, received, rooms = (
        subscribed.cluster,
        subscribed.channels,
        subscribed.received,
        subscribed.rooms,
    )
    owners = Counter(channels._room_node[room] for room in rooms)
    assert len(owners) == 3, owners  # every primary carries some of the rooms

    await _publish(cluster, channels, rooms)
    await eventually(lambda: len(received.publications) == ROOMS, "every room's publication")
    assert sorted(received.publications) == sorted(str(room).encode() for room in rooms)

    # Move the first room's slot to another primary, as resharding does.
    moved = rooms[0]
    slot = key_slot(channels.channel(moved).encode())
    source = channels._room_node[moved]
    target_port = next(p for p in redis_cluster.ports if f"127.0.0.1:{p}" != source)
    redis_cluster.move_slot(slot, target_port)
    await eventually(
        lambda: channels._room_node.get(moved) == f"127.0.0.1:{target_port}", "followed", 15
    )
    await eventually(lambda: received.caught_up == [moved], "caught up on the moved room")

    received.publications.clear()
    await _publish(cluster, channels, rooms)
    await eventually(lambda: len(received.publications) == ROOMS, "heard after the move")

    await channels.unsubscribe(moved)
    assert channels.count == ROOMS - 1


async def test_rooms_of_a_listener_whose_channel_slot_moved_are_heard_again(
    redis_cluster: RedisClusterProcesses, subscribed: Subscribed
) -> None:
    """A node's listener keeps a channel of its own on that node; when that channel's slot
    moves away the listener is replaced, and every room it carried is subscribed again."""
    channels, received, rooms = subscribed.channels, subscribed.received, subscribed.rooms
    node, listener = next(iter(channels._nodes.items()))
    carried = {room for room in rooms if channels._room_node[room] == node}
    assert carried
    slot = key_slot(listener.listener_name.encode())
    target_port = next(p for p in redis_cluster.ports if f"127.0.0.1:{p}" != node)
    redis_cluster.move_slot(slot, target_port)

    def replaced() -> bool:  # the node has no listener while the old stops and the new starts
        return channels._nodes.get(node) not in (None, listener)

    await eventually(replaced, "listener replaced", 15)
    await eventually(lambda: set(received.caught_up) >= carried, "its rooms caught up", 15)
    await eventually(lambda: channels.listening, "listening again")

    await _publish(subscribed.cluster, channels, rooms)
    await eventually(lambda: len(received.publications) == ROOMS, "every room heard")
