"""The Redis channels of the rooms one replica hosts: a channel per room, subscribed on one
pub/sub connection while the replica hosts the room, unsubscribed when it stops.

A channel per room, not per shard of rooms: what a replica receives is then exactly the
traffic of the rooms it hosts. With a fixed number of shards a replica hosting about as many
rooms as there are shards (10,000 connections in two-person consults host ~5,000 rooms)
subscribes to nearly every shard and receives nearly everything again, the broadcast this
replaces. The cost is one (S)SUBSCRIBE when a room gets its first connection here and one
(S)UNSUBSCRIBE after its last, next to the PostgreSQL read every join makes anyway, and one
entry per (room, subscribed replica) in Redis's channel table, bounded like the rooms hosted.

Sharded pub/sub (SSUBSCRIBE / SPUBLISH, Redis 7) where the server has it, so the same commands
work on Redis Cluster, where a shard channel lives on the node of its hash slot and one
command names one channel; classic SUBSCRIBE / PUBLISH otherwise. Which one is decided each
time the connection (re)connects, from the server's version.

Subscriptions asked within JOIN_LINGER_S of each other go in one command (one per hash
slot on a cluster node, which refuses channels of several slots in one): 10,000 clients joining
rooms of two made 5,000 commands of ~150 us of CPU each in redis-py. Unsubscriptions are
batched the same way (a draining replica gives up all its rooms at once), and a reconnect
subscribes every hosted room again in as few commands, a thousand channels a command.

`subscribe` returns once Redis has confirmed the subscription, so what its caller then reads
from PostgreSQL leaves nothing unseen between the two. Every later confirmation of a channel
(after a reconnect, or one that came too late for its caller) is a resubscription: what was
published meanwhile is lost, and `on_resubscribed` tells the owner to catch up from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from itertools import groupby
from typing import Any, Protocol
from uuid import UUID

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from domain.batching import JOIN_LINGER_S, GroupCommit
from domain.chat.room_channel import room_channel
from realtime.background import BackgroundTask
from realtime.channel_flavours import Flavour, detect_flavour
from realtime.metrics import FANOUT_CHANNELS, FANOUT_RESUBSCRIBED, FANOUT_SUBSCRIBED
from realtime.redis_text import text

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 2.0
CONFIRM_WITHIN_S = 2.0  # past it a join goes on; the late confirmation triggers a catch-up
_CHANNELS_PER_COMMAND = 1000  # a reconnect's resubscriptions: a replica may host many rooms


def _slot(channel: str) -> int:
    return key_slot(channel.encode())


class Channels(Protocol):
    """What the fan-out needs of its room channels: `RoomChannels` on one Redis,
    `realtime.cluster_channels.ClusterRoomChannels` on a Redis Cluster."""

    @property
    def count(self) -> int: ...

    def channel(self, room: UUID) -> str: ...

    async def flavour(self) -> Flavour: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def subscribe(self, room: UUID) -> bool: ...

    async def unsubscribe(self, room: UUID) -> None: ...


class RoomChannels:
    """One per replica's fan-out. `on_publication` gets each publication's raw bytes."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        replica_id: str,
        on_publication: Callable[[bytes], Awaitable[None]],
        on_resubscribed: Callable[[UUID], None],
        listener_name: str | None = None,
        slots_apart: bool = False,
    ) -> None:
        """`slots_apart`: the server is a cluster node (one command names one slot's channels)."""
        self.redis = redis
        self._prefix = prefix
        # The listener's connection is named after the replica (CLIENT LIST shows it; Redis is
        # told again on every reconnect) and always subscribed to a channel of that name:
        # redis-py sends a command on a pub/sub connection without a health-check PING, whose
        # answer only the listener may read, once the connection is subscribed to something.
        # (On a cluster the name carries a hash tag of the node's: `realtime.cluster_channels`.)
        self.listener_name = listener_name or f"{prefix}:replica:{replica_id}"
        # No reconnect inside redis-py: it would subscribe every channel again in one command
        # (refused on a cluster node once they span slots) before failing over to the
        # listener's loop, which does it again; the loop alone does, a slot and a chunk a command.
        template = redis.connection_pool
        self._listener_pool = aioredis.ConnectionPool(
            connection_class=template.connection_class,
            **{
                **template.connection_kwargs,
                "client_name": self.listener_name,
                "retry": Retry(NoBackoff(), 0, supported_errors=()),
            },
        )
        self._on_publication = on_publication
        self._on_resubscribed = on_resubscribed
        self._wanted: dict[str, UUID] = {}  # channel -> its room
        self._confirming: dict[str, asyncio.Future[bool]] = {}  # channel -> its caller's wait
        self._pubsub: Any = None  # redis.asyncio.client.PubSub while connected
        self._flavour: Flavour | None = None
        self._listener = BackgroundTask(f"listen {prefix}:*", self._listen_forever)
        self._slots_apart = slots_apart
        self._subscriptions: GroupCommit[str, None] = GroupCommit(
            self._send_subscriptions, writers=1, linger_s=JOIN_LINGER_S
        )
        self._unsubscriptions: GroupCommit[str, None] = GroupCommit(
            self._send_unsubscriptions, writers=1, linger_s=JOIN_LINGER_S
        )

    def channel(self, room: UUID) -> str:
        return room_channel(self._prefix, room)

    async def flavour(self) -> Flavour:
        """The kind of channel to publish on (what the listener last found, else asked now)."""
        if self._flavour is None:
            self._flavour = await detect_flavour(self.redis)
        return self._flavour

    @property
    def count(self) -> int:
        return len(self._wanted)

    @property
    def listening(self) -> bool:
        """Whether the listener's connection is up (its subscriptions asked for)."""
        return self._pubsub is not None

    async def start(self) -> None:
        self._listener.start()

    async def stop(self) -> None:
        await self._listener.stop()
        FANOUT_CHANNELS.dec(len(self._wanted))
        self._wanted.clear()
        await self._listener_pool.disconnect()

    async def subscribe(self, room: UUID) -> bool:
        """Listen to the room's channel; True once Redis confirmed it, False if it did not
        within CONFIRM_WITHIN_S or is unreachable (the subscription is then made, and caught up
        on, when Redis confirms it)."""
        channel = self.channel(room)
        if channel not in self._wanted:
            self._wanted[channel] = room
            FANOUT_CHANNELS.inc()
        pubsub, flavour = self._pubsub, self._flavour
        if pubsub is None or flavour is None:
            return False
        confirmed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._confirming[channel] = confirmed
        try:
            await self._subscriptions.submit(channel)
            async with asyncio.timeout(CONFIRM_WITHIN_S):
                return await confirmed
        except (TimeoutError, aioredis.RedisError, OSError) as exc:
            log.warning("subscription to %s not confirmed (%r); caught up once it is", channel, exc)
            return False
        finally:
            if self._confirming.get(channel) is confirmed:
                del self._confirming[channel]

    async def _send_subscriptions(self, channels: list[str]) -> list[None]:
        """On the connection they were asked on: a reconnect subscribes every wanted channel
        itself, and redis-py would send on a fresh, unread connection once this one is closed."""
        pubsub, flavour = self._pubsub, self._flavour
        if pubsub is not None and flavour is not None:
            await self._send_grouped(pubsub, flavour.subscribe, channels, wanted=True)
        return [None] * len(channels)

    async def unsubscribe(self, room: UUID) -> None:
        channel = self.channel(room)
        if self._wanted.pop(channel, None) is None:
            return
        FANOUT_CHANNELS.dec()
        if self._pubsub is not None:  # else the connection's subscriptions went with it
            await self._unsubscriptions.submit(channel)

    async def _send_unsubscriptions(self, channels: list[str]) -> list[None]:
        pubsub, flavour = self._pubsub, self._flavour
        if pubsub is not None and flavour is not None:
            try:
                await self._send_grouped(pubsub, flavour.unsubscribe, channels, wanted=False)
            except (aioredis.RedisError, OSError) as exc:  # the listener reconnects without
                log.warning("unsubscribing from %d channels failed: %r", len(channels), exc)
        return [None] * len(channels)

    async def _send_grouped(
        self, pubsub: Any, command: str, channels: list[str], *, wanted: bool
    ) -> None:
        """`command` for those of `channels` (not) wanted as it is written, in as few commands
        as the server takes (one hash slot each on a cluster node, _CHANNELS_PER_COMMAND at
        most). redis-py writes before its first await, so the last (un)subscription of a
        channel Redis gets is what `_wanted` says. Stops if the connection was replaced."""
        send = getattr(pubsub, command)
        groups = (
            [list(same) for _, same in groupby(sorted(channels, key=_slot), key=_slot)]
            if self._slots_apart
            else [channels]
        )
        for group in groups:
            for start in range(0, len(group), _CHANNELS_PER_COMMAND):
                if self._pubsub is not pubsub:
                    return
                chunk = group[start : start + _CHANNELS_PER_COMMAND]
                names = [channel for channel in chunk if (channel in self._wanted) == wanted]
                if names:
                    await send(*names)

    def forget(self, room: UUID) -> None:
        """Stop wanting the room without telling Redis: a cluster node drops a channel itself
        when its slot moves away, and answers an SUNSUBSCRIBE of it with MOVED, an error that
        would cost the listener's connection."""
        if self._wanted.pop(self.channel(room), None) is not None:
            FANOUT_CHANNELS.dec()

    # the listener

    async def _listen_forever(self) -> None:
        backoff = 0.1
        listener = aioredis.Redis(connection_pool=self._listener_pool)
        task = asyncio.current_task()
        assert task is not None
        while not task.cancelling():
            try:
                flavour = await detect_flavour(self.redis)
                async with listener.pubsub() as pubsub:
                    subscribe = getattr(pubsub, flavour.subscribe)
                    await subscribe(self.listener_name)
                    self._pubsub, self._flavour = pubsub, flavour
                    await self._send_grouped(
                        pubsub, flavour.subscribe, list(self._wanted), wanted=True
                    )
                    FANOUT_SUBSCRIBED.set(1)
                    backoff = 0.1
                    log.info("listening to %d room channels (%s)", self.count, flavour.publish)
                    while not task.cancelling():  # a redis-py await may swallow the stop
                        reply = await pubsub.get_message(timeout=1.0)
                        if reply is not None:
                            await self._handle(pubsub, flavour, reply)
                raise asyncio.CancelledError
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._pubsub is not None:
                    log.warning("lost the room channels' connection (%s); resubscribing", exc)
                    FANOUT_SUBSCRIBED.set(0)
                self._pubsub = None
                for confirmed in self._confirming.values():  # their callers stop waiting
                    if not confirmed.done():
                        confirmed.set_result(False)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            finally:
                self._pubsub = None
        raise asyncio.CancelledError

    async def _handle(self, pubsub: Any, flavour: Flavour, reply: dict[str, Any]) -> None:
        kind = reply["type"]
        if kind == flavour.message:
            try:
                await self._on_publication(reply["data"])
            except Exception:  # one bad publication must not cost the subscription
                log.exception("handling a publication on %s failed", text(reply["channel"]))
            return
        channel = text(reply["channel"])
        room = self._wanted.get(channel)
        if channel == self.listener_name:
            return
        if kind == flavour.subscribe:
            confirmed = self._confirming.get(channel)
            if room is None:  # left meanwhile (or redis-py resubscribed it after a reconnect)
                await getattr(pubsub, flavour.unsubscribe)(channel)
            elif confirmed is not None and not confirmed.done():
                confirmed.set_result(True)
            else:  # after a reconnect, or too late for its caller: publications were missed
                FANOUT_RESUBSCRIBED.inc()
                self._on_resubscribed(room)
