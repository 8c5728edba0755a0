"""Room channels on a Redis Cluster.

A shard channel lives on the primary that owns its hash slot, and SSUBSCRIBE must be sent
there. So a replica listens with one `RoomChannels` per primary, each on a plain connection to
its node, and subscribes each room on the primary that owns its channel's slot. What a replica
receives is still exactly the traffic of the rooms it hosts, and a node carries only the rooms
whose slots it owns.

The slot map is read again every RECHECK_S. A room whose slot moved (resharding, or a replica
promoted after its primary failed) is subscribed on its new owner and caught up from
PostgreSQL, as after any resubscription: what was published there before it was subscribed
is lost. A primary that left takes its listener with it; a new primary gets one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from itertools import count
from uuid import UUID

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot

from domain.chat.room_channel import room_channel
from domain.redis_client import RedisClient
from realtime.background import every
from realtime.channel_flavours import SHARDED, Flavour
from realtime.room_channels import Channels, RoomChannels

_UNROUTED = ""  # a room's node while it waits for the next recheck to subscribe it
RECHECK_S = 1.0  # one CLUSTER SLOTS a second per replica; a moved room waits at most this long


class ClusterRoomChannels:
    """`realtime.room_channels.Channels` on a Redis Cluster (Redis 7: sharded pub/sub)."""

    def __init__(
        self,
        cluster: RedisCluster,
        prefix: str,
        replica_id: str,
        on_publication: Callable[[bytes], Awaitable[None]],
        on_resubscribed: Callable[[UUID], None],
    ) -> None:
        self._cluster = cluster
        self._prefix = prefix
        self._replica_id = replica_id
        self._on_publication = on_publication
        self._on_resubscribed = on_resubscribed
        self._nodes: dict[str, RoomChannels] = {}  # a primary's name ("host:port") -> listener
        self._room_node: dict[UUID, str] = {}  # room -> the primary it is subscribed on
        self._rechecks = every(RECHECK_S, self._recheck, f"following the slots of {prefix}:*")

    def channel(self, room: UUID) -> str:
        return room_channel(self._prefix, room)

    async def flavour(self) -> Flavour:
        return SHARDED

    @property
    def count(self) -> int:
        return len(self._room_node)

    @property
    def listening(self) -> bool:
        return bool(self._nodes) and all(node.listening for node in self._nodes.values())

    async def start(self) -> None:
        await self._cluster.initialize()
        await self._follow_slots()
        self._rechecks.start()

    async def stop(self) -> None:
        await self._rechecks.stop()
        for listener in self._nodes.values():
            await _stop(listener)
        self._nodes.clear()
        self._room_node.clear()

    async def subscribe(self, room: UUID) -> bool:
        owner = self._owner(self.channel(room))
        listener = self._nodes.get(owner)
        # A primary the map has named before this replica listens there: the next recheck
        # subscribes the room and catches it up, as Redis's late confirmation would.
        self._room_node[room] = owner if listener is not None else _UNROUTED
        return await listener.subscribe(room) if listener is not None else False

    async def unsubscribe(self, room: UUID) -> None:
        owner = self._room_node.pop(room, None)
        if owner is not None and owner in self._nodes:
            await self._nodes[owner].unsubscribe(room)

    # following the slot map

    def _owner(self, key: str) -> str:
        return str(self._cluster.nodes_manager.slots_cache[key_slot(key.encode())][0].name)

    def _listener_name(self, node: str) -> str:
        """The listener's channel, with a hash tag whose slot the node owns."""
        base = f"{self._prefix}:replica:{self._replica_id}"
        return next(
            name for name in (f"{base}:{{{tag}}}" for tag in count()) if self._owner(name) == node
        )

    async def _recheck(self) -> None:
        await self._cluster.nodes_manager.initialize()  # raises mid-failover: next time, then
        await self._follow_slots()

    async def _follow_slots(self) -> None:
        primaries: dict[str, ClusterNode] = {
            node.name: node for node in self._cluster.get_primaries()
        }
        for name, listener in list(self._nodes.items()):
            if name not in primaries or self._owner(listener.listener_name) != name:
                del self._nodes[name]
                for room, routed_to in self._room_node.items():
                    if routed_to == name:  # subscribed again below, wherever they belong now
                        self._room_node[room] = _UNROUTED
                await _stop(listener)
        for name, node in primaries.items():
            if name not in self._nodes:
                self._nodes[name] = await self._listen_on(node)
        for room, name in list(self._room_node.items()):
            owner = self._owner(self.channel(room))
            target = self._nodes.get(owner)  # None: the map changed meanwhile; next time
            if self._room_node.get(room) != name or owner == name or target is None:
                continue  # left or moved meanwhile, where it belongs, or nowhere to go yet
            self._room_node[room] = owner
            if name in self._nodes:
                self._nodes[name].forget(room)
            await target.subscribe(room)
            if self._room_node.get(room) == owner:  # not left meanwhile
                self._on_resubscribed(room)

    async def _listen_on(self, node: ClusterNode) -> RoomChannels:
        # The node's own connection settings: its address, and the cluster's password, TLS
        # and timeouts.
        pool = aioredis.ConnectionPool(
            connection_class=node.connection_class, **node.connection_kwargs
        )
        redis = aioredis.Redis(connection_pool=pool)
        listener = RoomChannels(
            redis,
            self._prefix,
            self._replica_id,
            self._on_publication,
            self._on_resubscribed,
            listener_name=self._listener_name(node.name),
            slots_apart=True,
        )
        await listener.start()
        return listener


async def _stop(listener: RoomChannels) -> None:
    await listener.stop()
    await listener.redis.connection_pool.disconnect()  # the node's own, made by `_listen_on`


def open_room_channels(
    redis: RedisClient,
    prefix: str,
    replica_id: str,
    on_publication: Callable[[bytes], Awaitable[None]],
    on_resubscribed: Callable[[UUID], None],
) -> Channels:
    """The room channels for the client: per primary on a cluster, one listener otherwise."""
    if isinstance(redis, RedisCluster):
        return ClusterRoomChannels(redis, prefix, replica_id, on_publication, on_resubscribed)
    return RoomChannels(redis, prefix, replica_id, on_publication, on_resubscribed)
