"""Members who leave a conversation over REST stop receiving its room on every replica.

The API records each leave as a `conversation.member_left` domain event, and its outbox relay
publishes it on the room's own channel as a removal (`domain.chat.room_channel.relay_to_room`),
so only the replicas hosting the room hear of it; the fan-out takes that user's sockets out of
the room, after which each `/chat` event for the room checks PostgreSQL and is refused.
Pub/sub drops what arrives while a channel is unsubscribed, so after every resubscription the
members joined here are checked against PostgreSQL instead of trusting that nothing was missed.
"""

from __future__ import annotations

import asyncpg

from domain.chat.conversations import LEFT_REASON, members_of
from realtime.background import Coalesced
from realtime.fanout import RoomFanout


class MembershipWatch:
    """One per replica, beside the room fan-out it takes sockets out of."""

    def __init__(self, pool: asyncpg.Pool, fanout: RoomFanout) -> None:
        self._pool = pool
        self._fanout = fanout
        self._recheck = Coalesced(self._recheck_members, "membership recheck")

    async def start(self) -> None:
        self._fanout.on_resubscribed(self._recheck.soon)

    async def stop(self) -> None:
        await self._recheck.stop()

    async def _recheck_members(self) -> None:
        joined = self._fanout.local_members()
        if not joined:
            return
        members = await members_of(self._pool, list(joined))
        for room, users in joined.items():
            for user in users - members.get(room, set()):
                await self._fanout.evict_here(room, user, LEFT_REASON)
