"""The `/moderation` namespace of CONTRACT.md: live flags, read-only watching, actions, and
(an extension) moderators' claims on flags, so that two never act on one unknowingly."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import Field

from domain.chat.actions import MAX_MUTE, ActionOutcome, ModeratorAction, act_on_flag
from domain.chat.claims import claim_flag, release_flag
from domain.chat.flags import FlagStatus, flags_by_id, list_flags, room_has_flag
from domain.chat.messages import history
from domain.identity import Role
from domain.identity.tokens import Principal
from domain.identity.users import get_user
from domain.redis_client import RedisClient
from moderation.claim_keeper import ClaimKeeper
from realtime.bus import Subscription
from realtime.fanout import RoomFanout
from realtime.handoff import moderation_events, publish_flag_event
from realtime.limits import Budget
from realtime.namespace import AuthenticatedNamespace
from realtime.protocol import Ack, ErrorCode, EventError, Payload, event, ok

log = logging.getLogger(__name__)

MODERATORS = "moderators"
_WATCH_HISTORY = 50


def _watch_room(room: UUID) -> str:
    """The Socket.IO room of a chat room's watchers."""
    return f"watch:{room}"


class SubscribePayload(Payload):
    pass


class WatchPayload(Payload):
    room: UUID


class ActPayload(Payload):
    flag_id: UUID
    action: ModeratorAction
    reason: str | None = Field(default=None, max_length=1000)
    duration_s: int | None = Field(default=None, ge=1, le=int(MAX_MUTE.total_seconds()))
    take_over: bool = False  # act although another moderator has claimed the flag (audited)


class ClaimPayload(Payload):
    flag_id: UUID
    take_over: bool = False


class ReleasePayload(Payload):
    flag_id: UUID


class ModerationNamespace(AuthenticatedNamespace):
    allowed_roles = frozenset({Role.moderator, Role.admin})
    budgets = {
        **AuthenticatedNamespace.budgets,
        "subscribe": Budget(10, 60),
        "watch": Budget(60, 60),
        "unwatch": Budget(60, 60),
        "act": Budget(60, 60),
        "claim": Budget(120, 60),  # triage claims and renews often
        "release": Budget(120, 60),
    }

    def __init__(
        self,
        *,
        jwt_secret: str,
        pool: asyncpg.Pool,
        redis: RedisClient,
        prefix: str,
        fanout: RoomFanout,
    ) -> None:
        super().__init__("/moderation", jwt_secret=jwt_secret)
        self._pool = pool
        self._redis = redis
        self._prefix = prefix
        self._fanout = fanout
        fanout.on_watched(self._to_watchers)
        self._events = Subscription(redis, moderation_events(prefix), self._relay)
        self._claims = ClaimKeeper(pool, self._announce_released)

    async def start(self) -> None:
        await self._events.start()
        self._claims.start()

    async def stop(self) -> None:
        await self._claims.stop()
        await self._events.stop()

    async def _relay(self, raw: bytes) -> None:
        publication = json.loads(raw)
        await self.emit(publication["e"], publication["d"], room=MODERATORS)

    async def _to_watchers(self, room: UUID, event_name: str, data: dict[str, Any]) -> None:
        """The fan-out's hook: a watched chat room's message, edit or deletion."""
        await self.emit(event_name, data, room=_watch_room(room))

    async def _announce(self, event_name: str, flag: dict[str, Any]) -> None:
        """Every replica's moderators hear it through Redis; without Redis, this replica's do."""
        try:
            await publish_flag_event(self._redis, self._prefix, event_name, flag)
        except Exception as exc:
            log.warning("flag event only reaches this replica: %s", exc)
            await self.emit(event_name, flag, room=MODERATORS)

    async def _announce_released(self, flag_ids: list[UUID]) -> None:
        """Claims that ended without a request (expired, or their moderator went away)."""
        for flag in await flags_by_id(self._pool, flag_ids):
            await self._announce("flag_updated", flag.wire())

    async def _hold_connection(self, sid: str, moderator: Principal) -> None:
        """Count this connection among the moderator's, which keep their claims alive."""
        await self._claims.register(sid, moderator.user_id)
        if not self.server.manager.is_connected(sid, self.namespace):
            await self._claims.closed(sid)  # it closed while being registered

    @event("subscribe", SubscribePayload)
    async def subscribe(self, sid: str, _: SubscribePayload) -> Ack:
        moderator = await self._moderator(sid)
        await self._hold_connection(sid, moderator)
        await self.enter_room(sid, MODERATORS)
        flags, _more = await list_flags(
            self._pool, statuses=[FlagStatus.open, FlagStatus.escalated], limit=500
        )
        return ok(open=[flag.wire() for flag in flags])

    async def _moderator(self, sid: str) -> Principal:
        """The caller, if PostgreSQL still gives them a moderator's role: a token names the role
        it was issued with, and a demoted moderator's may live on for minutes."""
        principal = await self.principal(sid)
        user = await get_user(self._pool, principal.user_id)
        if user is None or user.role not in self.allowed_roles:
            raise EventError(ErrorCode.forbidden, "you are no longer a moderator")
        return principal.model_copy(update={"role": user.role})

    @event("watch", WatchPayload)
    async def watch(self, sid: str, payload: WatchPayload) -> Ack:
        await self._moderator(sid)
        if not await room_has_flag(self._pool, payload.room):
            raise EventError(ErrorCode.forbidden, "moderators watch only rooms with a flag")
        await self._fanout.watch(payload.room, sid)
        await self.enter_room(sid, _watch_room(payload.room))
        messages, _more = await history(self._pool, payload.room, None, _WATCH_HISTORY)
        return ok(messages=[message.wire() for message in messages])

    @event("unwatch", WatchPayload)
    async def unwatch(self, sid: str, payload: WatchPayload) -> Ack:
        await self.leave_room(sid, _watch_room(payload.room))
        await self._fanout.unwatch(payload.room, sid)
        return ok()

    @event("act", ActPayload)
    async def act(self, sid: str, payload: ActPayload) -> Ack:
        moderator = await self._moderator(sid)
        duration = timedelta(seconds=payload.duration_s) if payload.duration_s else None
        outcome = await act_on_flag(
            self._pool,
            payload.flag_id,
            moderator,
            payload.action,
            payload.reason,
            duration,
            take_over=payload.take_over,
        )
        await self._apply(outcome)
        flag = outcome.flag.wire()
        await self._announce("flag_updated", flag)
        return ok(flag=flag)

    @event("claim", ClaimPayload)
    async def claim(self, sid: str, payload: ClaimPayload) -> Ack:
        """Claim a flag (or renew one's claim) for a few minutes; another moderator's claim
        answers `conflict` naming them, unless `take_over`."""
        moderator = await self._moderator(sid)
        await self._hold_connection(sid, moderator)
        flag = (
            await claim_flag(self._pool, payload.flag_id, moderator, take_over=payload.take_over)
        ).wire()
        await self._announce("flag_updated", flag)
        return ok(flag=flag)

    @event("release", ReleasePayload)
    async def release(self, sid: str, payload: ReleasePayload) -> Ack:
        """Give up one's claim; releasing a flag one does not hold changes nothing."""
        moderator = await self._moderator(sid)
        flag, released = await release_flag(self._pool, payload.flag_id, moderator)
        if released:
            await self._announce("flag_updated", flag.wire())
        return ok(flag=flag.wire())

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
        await self._claims.closed(sid)
