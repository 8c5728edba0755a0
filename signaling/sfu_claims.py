"""Which replica hosts each consult's SFU room, kept in Redis.

The first replica to take a `to: "sfu"` signal for a consult claims its room
(`<prefix>:rtc:sfu:<consult>` = replica id); each replica lists the consults it hosts in
`<prefix>:rtc:pinned:<replica>`. If the hosting replica dies, its rooms die with it and, once
its lease expires (signaling.leases), a live replica `release`s its claims, so the next
`to: "sfu"` signal pins the room on a live replica and the members renegotiate with it.
"""

from __future__ import annotations

from uuid import UUID

from domain.redis_client import RedisClient

CLAIM_TTL_S = 12 * 3600

# Claim for ARGV[1] (kept ARGV[2] seconds) unless held; the holder, or nil if this claimed it.
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2])) end
return holder
"""

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
    def __init__(self, redis: RedisClient, prefix: str, replica_id: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._replica_id = replica_id
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    def _claim_key(self, consult: UUID) -> str:
        return f"{self._prefix}:rtc:sfu:{consult}"

    def _pinned_key(self, replica: str) -> str:
        return f"{self._prefix}:rtc:pinned:{replica}"

    async def claim(self, consult: UUID) -> str:
        """The replica hosting the consult's room, claiming it for this one if nobody has."""
        holder = _text(
            await self._claim(keys=[self._claim_key(consult)], args=[self._replica_id, CLAIM_TTL_S])
        )
        if holder is None:
            # No transaction needed: each claim renews the set's TTL, `release` deletes it.
            pinned = self._pinned_key(self._replica_id)
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.sadd(pinned, str(consult))
                pipe.expire(pinned, CLAIM_TTL_S)
                await pipe.execute()
        return holder or self._replica_id

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
