"""Members who leave a conversation over REST stop receiving its room on every replica.

The API records each leave as a `conversation.member_left` domain event, and its outbox relay
publishes it on the room's own channel as a removal (`domain.chat.room_channel.relay_to_room`),
so only the replicas hosting the room hear of it; the fan-out takes that user's sockets out of
the room, after which each `/chat` event for the room checks PostgreSQL and is refused.
Pub/sub drops what arrives while a channel is unsubscribed, so after a room's channel is
subscribed again its members joined here are checked against PostgreSQL instead of trusting
that nothing was missed (only those rooms: a loaded replica's late confirmations must not make
it read every room's members again and again).
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from domain.chat.conversations import LEFT_REASON, members_of
from realtime.background import Coalesced
from realtime.fanout import RoomFanout


class MembershipWatch:
    """One per replica, beside the room fan-out it takes sockets out of."""

    def __init__(self, pool: asyncpg.Pool, fanout: RoomFanout) -> None:
        self._pool = pool
        self._fanout = fanout
        self._unchecked: set[UUID] = set()  # rooms subscribed again since the last check
        self._recheck = Coalesced(self._recheck_members, "membership recheck")

    async def start(self) -> None:
        self._fanout.on_resubscribed(self._resubscribed)

    async def stop(self) -> None:
        await self._recheck.stop()

    def _resubscribed(self, room: UUID) -> None:
        self._unchecked.add(room)
        self._recheck.soon()

    async def _recheck_members(self) -> None:
        rooms, self._unchecked = self._unchecked, set()
        try:
            joined = self._fanout.local_members(rooms)
            members = await members_of(self._pool, list(joined)) if joined else {}
        except BaseException:
            self._unchecked |= rooms  # checked on the retry
            raise
        for room, users in joined.items():
            for user in users - members.get(room, set()):
                await self._fanout.evict_here(room, user, LEFT_REASON)
