"""Which replica hosts each consult's SFU room, kept in Redis.

The first replica to take a `to: "sfu"` signal for a consult claims its room
(`<prefix>:rtc:sfu:<consult>` = replica id); each replica lists the consults it hosts in
`<prefix>:rtc:pinned:<replica>`. If the hosting replica dies, its rooms die with it and, once
its lease expires (signaling.leases), a live replica `release`s its claims, so the next
`to: "sfu"` signal pins the room on a live replica and the members renegotiate with it.
"""

from __future__ import annotations

from uuid import UUID

import redis.asyncio as aioredis

CLAIM_TTL_S = 12 * 3600

# Delete a claim only if the replica ARGV[1] still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class SfuClaims:
    def __init__(self, redis: aioredis.Redis, prefix: str, replica_id: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._replica_id = replica_id
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

    async def host_of(self, consult: UUID) -> str | None:
        """The replica hosting the consult's room, if any does."""
        return _text(await self._redis.get(self._claim_key(consult)))

    async def unpin(self, consult: UUID) -> None:
        """This replica no longer hosts the consult's room."""
        await self._release(keys=[self._claim_key(consult)], args=[self._replica_id])
        await self._redis.srem(self._pinned_key(self._replica_id), str(consult))
