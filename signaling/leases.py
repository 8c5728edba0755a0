"""Replica leases for `/rtc`, so that a replica that dies (SIGKILL, lost host) releases its call
members and its SFU rooms, as realtime/presence.py does for chat presence.

Each replica holds a lease: its id in the sorted set `<prefix>:rtc:replicas`, scored with the
lease's expiry (unix ms), renewed every RENEW_EVERY_S. Every replica's reaper looks for expired
leases; for each, it marks the dead replica's call members gone as of the replica's last renewal
(signaling.calls.Calls.orphan: they then leave after the reconnect grace, or at once if it has
already passed, through the departures set, so `peer_left` is sent once whichever replica
reaps; a member who rejoined elsewhere meanwhile is kept), and releases the SFU rooms pinned to
it (signaling.sfu_host.SfuHost.release) so that the next `to: "sfu"` signal pins the room on a
live replica. Reaping is idempotent, so replicas reaping the same lease at once do no harm; the
lease is removed last.

A replica that finds at renewal that its lease had been reaped (it stalled for longer than the
lease) tells the namespace (`revived`), which restores its members who are still connected.

The durations come from the environment (read at import, so hub processes started by tests can
shorten them): RTC_REPLICA_LEASE_S (default 20 s); renewal every quarter of the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import cast

import redis.asyncio as aioredis

from pawhub.settings import get_settings

log = logging.getLogger(__name__)


LEASE_S = get_settings().rtc_replica_lease_s
RENEW_EVERY_S = LEASE_S / 4

# Remove a replica's lease only if it is still expired (it was not renewed while being reaped).
_REMOVE_EXPIRED = """
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expiry and tonumber(expiry) <= tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""

Orphan = Callable[[str, int], Awaitable[None]]  # dead replica id, its last renewal (unix ms)
Revived = Callable[[], Awaitable[None]]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ReplicaLeases:
    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        replica_id: str,
        orphan: Orphan,
        revived: Revived,
    ) -> None:
        self.replica_id = replica_id
        self._redis = redis
        self._key = f"{prefix}:rtc:replicas"
        self._orphan = orphan
        self._revived = revived
        self._renewer: asyncio.Task[None] | None = None
        self._remove_expired = redis.register_script(_REMOVE_EXPIRED)

    async def start(self) -> None:
        await self._renew()
        self._renewer = asyncio.create_task(self._renew_forever(), name="rtc-lease-renew")

    async def stop(self) -> None:
        """Stop renewing and give the lease back (the caller has released what it held)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        with contextlib.suppress(Exception):
            await self._redis.zrem(self._key, self.replica_id)

    async def _renew(self) -> bool:
        """Renew the lease; True if it was not there (reaped while this replica stalled)."""
        added = await self._redis.zadd(self._key, {self.replica_id: _now_ms() + _lease_ms()})
        return bool(added)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            try:
                if await self._renew():
                    log.warning("rtc replica %s outlived its lease; restoring", self.replica_id)
                    await self._revived()
            except Exception as exc:
                log.warning("rtc lease renewal failed: %s", exc)

    async def reap(self) -> list[str]:
        """Release what every replica whose lease expired held; the ids of those replicas."""
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
            await self._orphan(replica, int(expiry_ms) - _lease_ms())
            await self._remove_expired(keys=[self._key], args=[replica, _now_ms()])
            dead.append(replica)
        return dead


def _lease_ms() -> int:
    return int(LEASE_S * 1000)
