"""Presence across replicas, with leases so that a dead replica's users go offline.

Each replica holds a lease per (room, user) it serves: a member `user|replica` of the room's
sorted set, scored with the lease's expiry, renewed every few seconds. A user is online in a room
while any lease of theirs is live. A reaper on every replica removes expired leases; whichever
replica's ZREM removes the last lease of a user announces that user offline, so a replica that
dies takes its users offline within `LEASE_S` + `REAP_EVERY_S` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from uuid import UUID

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

LEASE_S = 20.0
RENEW_EVERY_S = 5.0
REAP_EVERY_S = 5.0

WentOffline = Callable[[UUID, UUID], Awaitable[None]]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _user_of(lease: object) -> UUID:
    return UUID(_text(lease).split("|", 1)[0])


class Presence:
    def __init__(
        self, redis: aioredis.Redis, prefix: str, replica_id: str, went_offline: WentOffline
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._replica_id = replica_id
        self._went_offline = went_offline
        # room -> user -> this replica's connections of that user in that room
        self._local: dict[UUID, dict[UUID, set[str]]] = defaultdict(lambda: defaultdict(set))
        self._tasks: list[asyncio.Task[None]] = []

    def _room_key(self, room: UUID) -> str:
        return f"{self._prefix}:presence:{room}"

    @property
    def _rooms_key(self) -> str:
        return f"{self._prefix}:presence:rooms"

    def _lease(self, user: UUID) -> str:
        return f"{user}|{self._replica_id}"

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._renew_forever(), name="presence-renew"),
            asyncio.create_task(self._reap_forever(), name="presence-reap"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # A replica that stops cleanly gives its leases back at once.
        for room, user in self._local_pairs():
            with contextlib.suppress(Exception):
                await self._redis.zrem(self._room_key(room), self._lease(user))

    def _local_pairs(self) -> list[tuple[UUID, UUID]]:
        return [(room, user) for room, users in self._local.items() for user in users]

    async def arrive(self, room: UUID, user: UUID, sid: str) -> None:
        self._local[room][user].add(sid)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zadd(self._room_key(room), {self._lease(user): time.time() + LEASE_S})
                pipe.sadd(self._rooms_key, str(room))
                await pipe.execute()
        except Exception as exc:  # presence is best effort while Redis is away
            log.warning("presence arrive not recorded: %s", exc)

    async def depart(self, room: UUID, user: UUID, sid: str) -> bool:
        """Forget one connection; True when the user is now offline in the room everywhere."""
        users = self._local.get(room)
        sids = users.get(user) if users is not None else None
        if users is None or sids is None:
            return False
        sids.discard(sid)
        if sids:
            return False
        del users[user]
        if not users:
            del self._local[room]
        try:
            await self._redis.zrem(self._room_key(room), self._lease(user))
            return not await self._has_live_lease(room, user)
        except Exception as exc:
            log.warning("presence depart not recorded: %s", exc)
            return True

    async def online(self, room: UUID) -> list[UUID]:
        try:
            leases = await self._redis.zrangebyscore(self._room_key(room), time.time(), "+inf")
        except Exception as exc:
            log.warning("presence unavailable: %s", exc)
            leases = []
        local = set(self._local.get(room, ()))
        remote = {_user_of(lease) for lease in leases}
        return sorted(local | remote)

    async def _has_live_lease(self, room: UUID, user: UUID) -> bool:
        leases = await self._redis.zrangebyscore(self._room_key(room), time.time(), "+inf")
        return any(_user_of(lease) == user for lease in leases)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            if not self._local:
                continue
            try:
                expiry = time.time() + LEASE_S
                async with self._redis.pipeline(transaction=False) as pipe:
                    for room, user in self._local_pairs():
                        pipe.zadd(self._room_key(room), {self._lease(user): expiry})
                        pipe.sadd(self._rooms_key, str(room))
                    await pipe.execute()
            except Exception as exc:
                log.warning("presence renewal failed: %s", exc)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(REAP_EVERY_S)
            try:
                await self._reap()
            except Exception as exc:
                log.warning("presence reaping failed: %s", exc)

    async def _reap(self) -> None:
        now = time.time()
        for raw_room in await self._redis.smembers(self._rooms_key):
            room = UUID(_text(raw_room))
            key = self._room_key(room)
            for lease in await self._redis.zrangebyscore(key, "-inf", now):
                if await self._redis.zrem(key, _text(lease)) != 1:
                    continue  # another replica reaped it
                user = _user_of(lease)
                here = user in self._local.get(room, ())
                if not here and not await self._has_live_lease(room, user):
                    await self._went_offline(room, user)
            if await self._redis.zcard(key) == 0:
                await self._redis.srem(self._rooms_key, str(room))
