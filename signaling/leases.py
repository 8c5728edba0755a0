"""Replica leases for `/rtc`, so that a replica that dies (SIGKILL, lost host) releases its call
members and its SFU rooms, as realtime/presence.py does for chat presence.

Each replica holds a lease: its id in the sorted set `<prefix>:rtc:replicas`, scored with the
lease's expiry (unix ms), renewed every quarter of the lease (RTC_REPLICA_LEASE_S, 20 s by
default; signaling.replica drives renewal and reaping). Every replica's reaper looks for expired
leases; for each, it marks the dead replica's call members gone as of the replica's last renewal
(signaling.calls.Calls.orphan: they then leave after the reconnect grace, or at once if it has
already passed, through the departures set, so `peer_left` is sent once whichever replica
reaps; a member who rejoined elsewhere meanwhile is kept), and releases the SFU rooms pinned to
it (signaling.sfu_host.SfuHost.release) so that the next `to: "sfu"` signal pins the room on a
live replica. Reaping is idempotent, so replicas reaping the same lease at once do no harm; the
lease is removed last.

A replica that finds at renewal that its lease had been reaped (it stalled for longer than the
lease) restores its members who are still connected.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import cast

from domain.redis_client import RedisClient

# Remove a replica's lease only if it is still expired (it was not renewed while being reaped).
_REMOVE_EXPIRED = """
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expiry and tonumber(expiry) <= tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""

Orphan = Callable[[str, int], Awaitable[None]]  # dead replica id, its last renewal (unix ms)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ReplicaLeases:
    def __init__(self, redis: RedisClient, prefix: str, replica_id: str, lease_s: float) -> None:
        self.replica_id = replica_id
        self.renew_every_s = lease_s / 4
        self._redis = redis
        self._key = f"{prefix}:rtc:replicas"
        self._lease_ms = int(lease_s * 1000)
        self._remove_expired = redis.register_script(_REMOVE_EXPIRED)

    async def renew(self) -> bool:
        """Renew the lease; True if it was not there (reaped while this replica stalled)."""
        added = await self._redis.zadd(self._key, {self.replica_id: _now_ms() + self._lease_ms})
        return bool(added)

    async def give_back(self) -> None:
        """Drop the lease of a replica stopping cleanly (it has released what it held)."""
        with contextlib.suppress(Exception):
            await self._redis.zrem(self._key, self.replica_id)

    async def reap(self, orphan: Orphan) -> list[str]:
        """`orphan` what every replica whose lease expired held, then drop its lease; the ids
        of those replicas."""
        now_ms = _now_ms()
        expired = cast(
            list[tuple[bytes, float]],
            await self._redis.zrangebyscore(self._key, "-inf", now_ms, withscores=True),
        )
        dead: list[str] = []
        for raw_replica, expiry_ms in expired:
            replica = _text(raw_replica)
            if replica == self.replica_id:
                continue  # this replica is alive: its renewal is late, not missing
            await orphan(replica, int(expiry_ms) - self._lease_ms)
            await self._remove_expired(keys=[self._key], args=[replica, _now_ms()])
            dead.append(replica)
        return dead
