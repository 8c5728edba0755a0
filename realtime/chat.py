"""The `/chat` namespace of CONTRACT.md: rooms, durable ordered messages, recovery, receipts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
from pydantic import Field

from domain.conversations import is_member
from domain.messages import (
    MAX_BODY_CHARS,
    MAX_HISTORY_PAGE,
    MessageNotFound,
    Muted,
    NewMessage,
    NotAMember,
    NotYourMessage,
    RoomMissing,
    edit_message,
    history,
    mark_read,
    redact_message,
)
from domain.moderation import report_message
from domain.tokens import Principal
from realtime.fanout import RoomFanout, RoomNotFound
from realtime.group_commit import GroupCommitStore
from realtime.handoff import ModerationHandoff
from realtime.metrics import MESSAGES_STORED
from realtime.namespace import AuthenticatedNamespace
from realtime.presence import Presence
from realtime.protocol import Ack, ErrorCode, EventError, Payload, event, ok
from realtime.rate_limit import SendRateLimiter

log = logging.getLogger(__name__)


class RoomPayload(Payload):
    room: UUID


class JoinPayload(RoomPayload):
    since_seq: int | None = Field(default=None, ge=0)


class SendPayload(RoomPayload):
    client_id: str = Field(min_length=1, max_length=100)
    body: str


class HistoryPayload(RoomPayload):
    before_seq: int | None = Field(default=None, ge=1)
    limit: int = Field(default=50, ge=1, le=MAX_HISTORY_PAGE)


class EditPayload(RoomPayload):
    id: UUID
    body: str


class DeletePayload(RoomPayload):
    id: UUID


class TypingPayload(RoomPayload):
    typing: bool


class ReadPayload(RoomPayload):
    seq: int = Field(ge=0)


class ReportPayload(RoomPayload):
    id: UUID
    reason: str = Field(min_length=1, max_length=1000)


class ScreenedBody(NamedTuple):
    """A body as it may be stored (e.g. card numbers masked), or why it may not be sent."""

    body: str
    refusal: str | None = None


Screen = Callable[[str], ScreenedBody]


def _checked_body(body: str) -> str:
    if len(body) > MAX_BODY_CHARS:
        raise EventError(ErrorCode.too_large, f"body is over {MAX_BODY_CHARS} characters")
    if not body.strip():
        raise EventError(ErrorCode.invalid, "body is empty")
    return body


class ChatNamespace(AuthenticatedNamespace):
    def __init__(
        self,
        *,
        jwt_secret: str,
        pool: asyncpg.Pool,
        fanout: RoomFanout,
        presence: Presence,
        limiter: SendRateLimiter,
        handoff: ModerationHandoff,
        screen: Screen,
        store: GroupCommitStore,
    ) -> None:
        super().__init__("/chat", jwt_secret=jwt_secret)
        self._pool = pool
        self._fanout = fanout
        self._presence = presence
        self._limiter = limiter
        self._handoff = handoff
        self._screen = screen
        self._store = store

    async def _member(self, sid: str, room: UUID) -> Principal:
        """The caller, once shown to be a member of `room` (joined here, or per PostgreSQL)."""
        principal = await self.principal(sid)
        if room in self._fanout.local_rooms(sid) or await is_member(
            self._pool, room, principal.user_id
        ):
            return principal
        exists = await self._pool.fetchval("SELECT 1 FROM conversations WHERE id = $1", room)
        if exists is None:
            raise EventError(ErrorCode.not_found, "no such room")
        raise EventError(ErrorCode.forbidden, "you are not a member of this room")

    @event("join", JoinPayload)
    async def join(self, sid: str, payload: JoinPayload) -> Ack:
        principal = await self._member(sid, payload.room)
        try:
            joined = await self._fanout.join(
                payload.room, sid, principal.user_id, payload.since_seq
            )
        except RoomNotFound as exc:
            raise EventError(ErrorCode.not_found, "no such room") from exc
        await self._presence.arrive(payload.room, principal.user_id, sid)
        await self._fanout.publish(
            payload.room,
            "presence",
            {
                "room": str(payload.room),
                "user_id": str(principal.user_id),
                "online": True,
            },
            skip_sid=sid,
        )
        return ok(
            room=str(payload.room),
            last_seq=joined.last_seq,
            missed=[message.wire() for message in joined.missed],
            has_more=joined.has_more,
            online=[str(user) for user in await self._presence.online(payload.room)],
        )

    @event("leave", RoomPayload)
    async def leave(self, sid: str, payload: RoomPayload) -> Ack:
        principal = await self.principal(sid)
        if payload.room in self._fanout.local_rooms(sid):
            await self._leave(sid, payload.room, principal)
        return ok()

    async def _leave(self, sid: str, room: UUID, principal: Principal) -> None:
        await self._fanout.leave(room, sid)
        if await self._presence.depart(room, principal.user_id, sid):
            await self.announce_offline(room, principal.user_id)

    async def announce_offline(self, room: UUID, user: UUID) -> None:
        await self._fanout.publish(
            room, "presence", {"room": str(room), "user_id": str(user), "online": False}
        )

    async def on_disconnect(self, sid: str, *_: Any) -> None:
        principal = await self.principal(sid)
        for room in self._fanout.local_rooms(sid):
            await self._leave(sid, room, principal)

    @event("send", SendPayload)
    async def send(self, sid: str, payload: SendPayload) -> Ack:
        screened = self._screen(_checked_body(payload.body))
        if screened.refusal is not None:
            raise EventError(ErrorCode.forbidden, screened.refusal)
        body = screened.body
        principal = await self.principal(sid)
        if not await self._limiter.allow(principal.user_id):
            raise EventError(ErrorCode.rate_limited, "too many messages; slow down")
        try:
            message, is_new = await self._store.store(
                NewMessage(payload.room, principal, payload.client_id, body)
            )
        except RoomMissing as exc:
            raise EventError(ErrorCode.not_found, "no such room") from exc
        except NotAMember as exc:
            raise EventError(ErrorCode.forbidden, "you are not a member of this room") from exc
        except Muted as exc:
            raise EventError(
                ErrorCode.forbidden, f"a moderator muted you here until {exc.until.isoformat()}"
            ) from exc
        wire = message.wire()
        if is_new:
            MESSAGES_STORED.inc()
            await self._fanout.publish_message(message.room, message.seq, wire)
            self._handoff.submit(message)
        return ok(message=wire)

    @event("history", HistoryPayload)
    async def history(self, sid: str, payload: HistoryPayload) -> Ack:
        await self._member(sid, payload.room)
        messages, has_more = await history(
            self._pool, payload.room, payload.before_seq, payload.limit
        )
        return ok(messages=[message.wire() for message in messages], has_more=has_more)

    @event("edit", EditPayload)
    async def edit(self, sid: str, payload: EditPayload) -> Ack:
        body = _checked_body(payload.body)
        principal = await self._member(sid, payload.room)
        try:
            message = await edit_message(
                self._pool, payload.room, payload.id, principal.user_id, body
            )
        except MessageNotFound as exc:
            raise EventError(ErrorCode.not_found, "no such message") from exc
        except NotYourMessage as exc:
            raise EventError(ErrorCode.forbidden, "only the sender edits a message") from exc
        wire = message.wire()
        await self._fanout.publish(
            payload.room,
            "message_edited",
            {key: wire[key] for key in ("room", "id", "seq", "body", "edited_at")},
        )
        return ok(message=wire)

    @event("delete", DeletePayload)
    async def delete(self, sid: str, payload: DeletePayload) -> Ack:
        principal = await self._member(sid, payload.room)
        try:
            message = await redact_message(self._pool, payload.room, payload.id, principal)
        except MessageNotFound as exc:
            raise EventError(ErrorCode.not_found, "no such message") from exc
        except NotYourMessage as exc:
            raise EventError(
                ErrorCode.forbidden, "only the sender or a moderator deletes a message"
            ) from exc
        await self._fanout.publish(
            payload.room,
            "message_deleted",
            {
                "room": str(message.room),
                "id": str(message.id),
                "seq": message.seq,
            },
        )
        return ok()

    @event("typing", TypingPayload)
    async def typing(self, sid: str, payload: TypingPayload) -> Ack:
        if payload.room not in self._fanout.local_rooms(sid):
            raise EventError(ErrorCode.forbidden, "join the room first")
        principal = await self.principal(sid)
        await self._fanout.publish(
            payload.room,
            "typing",
            {
                "room": str(payload.room),
                "user_id": str(principal.user_id),
                "typing": payload.typing,
            },
            skip_sid=sid,
        )
        return ok()

    @event("read", ReadPayload)
    async def read(self, sid: str, payload: ReadPayload) -> Ack:
        principal = await self._member(sid, payload.room)
        seq = await mark_read(self._pool, payload.room, principal.user_id, payload.seq)
        await self._fanout.publish(
            payload.room,
            "receipt",
            {
                "room": str(payload.room),
                "user_id": str(principal.user_id),
                "seq": seq,
            },
            skip_sid=sid,
        )
        return ok(seq=seq)

    @event("report", ReportPayload)
    async def report(self, sid: str, payload: ReportPayload) -> Ack:
        principal = await self._member(sid, payload.room)
        try:
            flag = await report_message(
                self._pool, payload.room, payload.id, principal.user_id, payload.reason
            )
        except MessageNotFound as exc:
            raise EventError(ErrorCode.not_found, "no such message") from exc
        await self._handoff.announce_flag(flag.wire())
        return ok(flag_id=str(flag.id))
