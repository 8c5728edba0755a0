"""Members who leave a conversation over REST stop receiving its room on every replica.

The API records each leave as a `conversation.member_left` domain event (outbox, relayed to
Redis within the relay's period); every replica takes that user's sockets out of the room
(`removed`), after which each `/chat` event for the room checks PostgreSQL and is refused.
Pub/sub drops what arrives while a replica is unsubscribed, so each (re)subscription checks
every member joined here against PostgreSQL instead of trusting that nothing was missed.
"""

from __future__ import annotations

import json
from uuid import UUID

import asyncpg

from domain.chat.conversations import MEMBER_LEFT, members_of
from domain.outbox import events_channel
from domain.redis_client import RedisClient
from realtime.bus import Subscription
from realtime.fanout import RoomFanout

REASON = "you left the conversation"


class MembershipWatch:
    """One per replica, beside the room fan-out it takes sockets out of."""

    def __init__(
        self, pool: asyncpg.Pool, redis: RedisClient, prefix: str, fanout: RoomFanout
    ) -> None:
        self._pool = pool
        self._fanout = fanout
        self._subscription = Subscription(
            redis, events_channel(prefix), self._receive, on_subscribed=self._recheck
        )

    async def start(self) -> None:
        await self._subscription.start()

    async def stop(self) -> None:
        await self._subscription.stop()

    async def _receive(self, raw: bytes) -> None:
        event = json.loads(raw)
        if event.get("topic") == MEMBER_LEFT:
            payload = event["payload"]
            await self._fanout.evict_here(
                UUID(payload["conversation_id"]), UUID(payload["user_id"]), REASON
            )

    async def _recheck(self) -> None:
        joined = self._fanout.local_members()
        if not joined:
            return
        members = await members_of(self._pool, list(joined))
        for room, users in joined.items():
            for user in users - members.get(room, set()):
                await self._fanout.evict_here(room, user, REASON)
