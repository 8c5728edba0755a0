"""This replica's side of moderators' claims (`domain.chat.claims`): the leases of its moderator
connections, renewed while they live and dropped as they close (releasing a moderator's claims
with their last connection anywhere), and the sweep that ends expired claims."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from uuid import UUID, uuid4

import asyncpg

from domain.chat.claims import (
    Connection,
    connection_closed,
    register_connection,
    renew_connections,
    sweep_claims,
)
from realtime.background import BackgroundTask, every

log = logging.getLogger(__name__)

RENEW_EVERY_S = 30.0  # a third of the lease, so a slow renewal or two never lets it lapse
SWEEP_EVERY_S = 5.0  # how late an expired claim may still be shown as held

Released = Callable[[list[UUID]], Awaitable[None]]


class ClaimKeeper:
    """Leases for this replica's moderator connections, and the claims sweep.

    `released` hears of the flags whose claims ended without a request (a last connection
    closed, a claim expired), to tell every moderator. Each replica sweeps; a released claim is
    deleted, and so announced, by exactly one of them."""

    def __init__(self, pool: asyncpg.Pool, released: Released) -> None:
        self.replica = uuid4().hex
        self._pool = pool
        self._released = released
        self._live: dict[str, UUID] = {}  # this replica's registered connections -> moderator
        self._loops: tuple[BackgroundTask, ...] = (
            every(RENEW_EVERY_S, self._renew, "moderation-claims-renew"),
            every(SWEEP_EVERY_S, self._sweep, "moderation-claims-sweep"),
        )

    def start(self) -> None:
        for loop in self._loops:
            loop.start()

    async def stop(self) -> None:
        for loop in self._loops:
            await loop.stop()

    def connection(self, sid: str) -> Connection:
        return Connection(self.replica, sid)

    async def register(self, sid: str, moderator: UUID) -> None:
        """Count `sid` among `moderator`'s live connections (its claims last while it does).
        Tracked before the write, so a close that comes while it is under way finds it."""
        self._live[sid] = moderator
        await register_connection(self._pool, moderator, self.connection(sid))

    async def closed(self, sid: str) -> None:
        """`sid` closed: its lease goes, and with the moderator's last one, their claims."""
        moderator = self._live.pop(sid, None)
        if moderator is None:
            return
        try:
            released = await connection_closed(self._pool, moderator, self.connection(sid))
        except Exception as exc:  # the lease lapses unrenewed; the sweep releases the claims
            log.warning("moderator connection %s left its lease to lapse: %s", sid, exc)
            return
        if released:
            await self._released(released)

    async def _renew(self) -> None:
        await renew_connections(self._pool, self.replica, dict(self._live))

    async def _sweep(self) -> None:
        released = await sweep_claims(self._pool)
        if released:
            await self._released(released)
