"""The embedded SFU rooms of the consults pinned to this replica.

A consult's SfuRoom lives on one replica: the first to take a `to: "sfu"` signal for it claims
it in Redis (`<prefix>:rtc:sfu:<consult>` = replica id) and the others forward their members'
signals there (see ReplicaBus.send). The room's answers and offers go back to each member
through `deliver`, wherever they are connected. The claim ends when the room empties. Each
replica lists the consults it hosts in `<prefix>:rtc:pinned:<replica>`; if the hosting replica
dies, its rooms die with it and, once its lease expires (signaling.leases), a live replica
`release`s its claims, so the next `to: "sfu"` signal pins the room on a live replica and the
members renegotiate with it (their old connections to the dead room fail).

Per participant, the room's answer to an offer is delivered before any later room offer
(SfuRoom's contract), by one lock per participant around both.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis
from aiortc import RTCSessionDescription

from media.sfu import IceCandidateInit, SfuRoom

log = logging.getLogger(__name__)

CLAIM_TTL_S = 12 * 3600

# Delete a claim only if the replica ARGV[1] still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

Deliver = Callable[[UUID, UUID, str, dict[str, Any]], Awaitable[None]]  # consult, user, ...


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class SfuHost:
    def __init__(
        self, redis: aioredis.Redis, prefix: str, replica_id: str, deliver: Deliver
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._replica_id = replica_id
        self._deliver = deliver
        self._rooms: dict[UUID, SfuRoom] = {}
        self._locks: defaultdict[tuple[UUID, UUID], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._release = redis.register_script(_RELEASE)

    def _claim_key(self, consult: UUID) -> str:
        return f"{self._prefix}:rtc:sfu:{consult}"

    def _pinned_key(self, replica: str) -> str:
        return f"{self._prefix}:rtc:pinned:{replica}"

    async def claim(self, consult: UUID) -> str:
        """The replica hosting the consult's room, claiming it for this one if nobody has."""
        key = self._claim_key(consult)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, self._replica_id, nx=True, ex=CLAIM_TTL_S)
            pipe.get(key)
            claimed, host = await pipe.execute()
        if claimed:
            pinned = self._pinned_key(self._replica_id)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(pinned, str(consult))
                pipe.expire(pinned, CLAIM_TTL_S)
                await pipe.execute()
        return _text(host) or self._replica_id

    async def release(self, replica: str) -> list[UUID]:
        """Free the claims of the dead replica `replica`; the consults whose claim it held."""
        pinned = self._pinned_key(replica)
        released: list[UUID] = []
        for raw in await self._redis.smembers(pinned):
            consult = UUID(_text(raw))
            if await self._release(keys=[self._claim_key(consult)], args=[replica]):
                released.append(consult)
        await self._redis.delete(pinned)
        return released

    async def reclaim(self) -> None:
        """Claim again the rooms hosted here (after this replica's lease was reaped)."""
        for consult in list(self._rooms):
            if await self.claim(consult) != self._replica_id:
                log.warning("sfu room %s was pinned elsewhere meanwhile; closing it", consult)
                room = self._rooms.pop(consult)
                await room.close()

    async def host_of(self, consult: UUID) -> str | None:
        """The replica hosting the consult's room, if any does."""
        return _text(await self._redis.get(self._claim_key(consult)))

    async def signal(
        self,
        consult: UUID,
        user: UUID,
        description: RTCSessionDescription | None,
        candidate: IceCandidateInit | None,
    ) -> None:
        """Apply a member's description or candidate to the consult's room (hosted here).
        Raises what SfuRoom raises: NegotiationConflict, KeyError, ValueError, and aiortc's
        errors for descriptions it cannot apply."""
        room = self._room(consult)
        async with self._locks[(consult, user)]:
            if description is not None and description.type == "offer":
                answer = await room.handle_offer(str(user), description)
                await self._deliver(consult, user, "signal", _from_sfu(consult, answer))
            elif description is not None:
                await room.handle_answer(str(user), description)
            if candidate is not None:
                await room.add_ice_candidate(str(user), candidate)

    async def remove(self, consult: UUID, user: UUID) -> None:
        """Take a member out of the consult's room; close the room once it is empty."""
        room = self._rooms.get(consult)
        self._locks.pop((consult, user), None)
        if room is None:
            return
        await room.remove(str(user))
        if not room.participant_ids:
            del self._rooms[consult]
            await room.close()
            await self._unpin(consult)

    async def _unpin(self, consult: UUID) -> None:
        await self._release(keys=[self._claim_key(consult)], args=[self._replica_id])
        await self._redis.srem(self._pinned_key(self._replica_id), str(consult))

    async def close(self) -> None:
        rooms, self._rooms = list(self._rooms.items()), {}
        for consult, room in rooms:
            await room.close()
            await self._unpin(consult)

    def _room(self, consult: UUID) -> SfuRoom:
        room = self._rooms.get(consult)
        if room is None:

            async def offer(participant_id: str, description: RTCSessionDescription) -> None:
                user = UUID(participant_id)
                async with self._locks[(consult, user)]:
                    await self._deliver(consult, user, "signal", _from_sfu(consult, description))

            room = self._rooms[consult] = SfuRoom(offer)
        return room


def _from_sfu(consult: UUID, description: RTCSessionDescription) -> dict[str, Any]:
    return {
        "consult_id": str(consult),
        "from": "sfu",
        "description": {"type": description.type, "sdp": description.sdp},
    }
