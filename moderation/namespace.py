"""The `/moderation` namespace of CONTRACT.md: live flags, read-only watching, actions."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis
from pydantic import Field

from domain.identity import Role
from domain.messages import MessageNotFound, history
from domain.moderation import (
    MAX_MUTE,
    ActionOutcome,
    FlagNotFound,
    FlagStatus,
    ModeratorAction,
    act_on_flag,
    list_flags,
    room_has_flag,
)
from realtime.bus import Subscription
from realtime.fanout import RoomFanout, RoomNotFound
from realtime.handoff import moderation_events, publish_flag_event
from realtime.namespace import AuthenticatedNamespace
from realtime.protocol import Ack, ErrorCode, EventError, Payload, event, ok

log = logging.getLogger(__name__)

MODERATORS = "moderators"
_WATCH_HISTORY = 50


class SubscribePayload(Payload):
    pass


class WatchPayload(Payload):
    room: UUID


class ActPayload(Payload):
    flag_id: UUID
    action: ModeratorAction
    reason: str | None = Field(default=None, max_length=1000)
    duration_s: int | None = Field(default=None, ge=1, le=int(MAX_MUTE.total_seconds()))


class ModerationNamespace(AuthenticatedNamespace):
    allowed_roles = frozenset({Role.moderator, Role.admin})

    def __init__(
        self,
        *,
        jwt_secret: str,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        prefix: str,
        fanout: RoomFanout,
    ) -> None:
        super().__init__("/moderation", jwt_secret=jwt_secret)
        self._pool = pool
        self._redis = redis
        self._prefix = prefix
        self._fanout = fanout
        self._events = Subscription(redis, moderation_events(prefix), self._relay)

    async def start(self) -> None:
        await self._events.start()

    async def stop(self) -> None:
        await self._events.stop()

    async def _relay(self, raw: bytes) -> None:
        publication = json.loads(raw)
        await self.emit(publication["e"], publication["d"], room=MODERATORS)

    async def _announce(self, event_name: str, flag: dict[str, Any]) -> None:
        """Every replica's moderators hear it through Redis; without Redis, this replica's do."""
        try:
            await publish_flag_event(self._redis, self._prefix, event_name, flag)
        except Exception as exc:
            log.warning("flag event only reaches this replica: %s", exc)
            await self.emit(event_name, flag, room=MODERATORS)

    @event("subscribe", SubscribePayload)
    async def subscribe(self, sid: str, _: SubscribePayload) -> Ack:
        await self.enter_room(sid, MODERATORS)
        flags, _more = await list_flags(
            self._pool, statuses=[FlagStatus.open, FlagStatus.escalated], limit=500
        )
        return ok(open=[flag.wire() for flag in flags])

    @event("watch", WatchPayload)
    async def watch(self, sid: str, payload: WatchPayload) -> Ack:
        if not await room_has_flag(self._pool, payload.room):
            raise EventError(ErrorCode.forbidden, "moderators watch only rooms with a flag")
        try:
            await self._fanout.watch(payload.room, sid)
        except RoomNotFound as exc:
            raise EventError(ErrorCode.not_found, "no such room") from exc
        messages, _more = await history(self._pool, payload.room, None, _WATCH_HISTORY)
        return ok(messages=[message.wire() for message in messages])

    @event("unwatch", WatchPayload)
    async def unwatch(self, sid: str, payload: WatchPayload) -> Ack:
        await self._fanout.unwatch(payload.room, sid)
        return ok()

    @event("act", ActPayload)
    async def act(self, sid: str, payload: ActPayload) -> Ack:
        moderator = await self.principal(sid)
        duration = timedelta(seconds=payload.duration_s) if payload.duration_s else None
        try:
            outcome = await act_on_flag(
                self._pool, payload.flag_id, moderator, payload.action, payload.reason, duration
            )
        except FlagNotFound as exc:
            raise EventError(ErrorCode.not_found, "no such flag") from exc
        except MessageNotFound as exc:
            raise EventError(ErrorCode.not_found, "the flagged message is gone") from exc
        await self._apply(outcome)
        flag = outcome.flag.wire()
        await self._announce("flag_updated", flag)
        return ok(flag=flag)

    async def _apply(self, outcome: ActionOutcome) -> None:
        """Make the room see the action at once, on every replica."""
        room = outcome.flag.room
        if outcome.redacted is not None:
            message = outcome.redacted
            await self._fanout.publish(
                room,
                "message_deleted",
                {"room": str(room), "id": str(message.id), "seq": message.seq},
            )
        if outcome.banned is not None:
            await self._fanout.evict(room, outcome.banned, "banned by a moderator")

    async def on_disconnect(self, sid: str, *_: Any) -> None:
        for room in self._fanout.watched_rooms(sid):
            await self._fanout.unwatch(room, sid)
