"""The `/chat` namespace of CONTRACT.md: rooms, durable ordered messages, recovery, receipts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
from pydantic import Field

from domain.chat.edits import edit_message, redact_message
from domain.chat.flags import report_message
from domain.chat.messages import MAX_HISTORY_PAGE, NewMessage, history, mark_read
from domain.chat.posting import checked_body
from domain.identity.tokens import Principal
from realtime.fanout import RoomFanout
from realtime.group_commit import GroupCommitStore
from realtime.handoff import ModerationHandoff
from realtime.limits import Budget
from realtime.metrics import MESSAGES_STORED
from realtime.namespace import AuthenticatedNamespace
from realtime.presence import Presence
from realtime.presence_news import PresenceNews
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


class ChatNamespace(AuthenticatedNamespace):
    # The chat load tester joins once per client (up to 20 clients share a user in its
    # capacity scenario) and then only sends.
    budgets = {
        **AuthenticatedNamespace.budgets,
        "send": None,  # realtime.rate_limit.SendRateLimiter: CHAT_RATE_LIMIT per 10 s, in Redis
        "join": Budget(200, 60),
        "leave": Budget(200, 60),
        "history": Budget(60, 10),
        "typing": Budget(20, 10),
        "read": Budget(100, 10),
        "edit": Budget(30, 60),
        "delete": Budget(30, 60),
        "report": Budget(10, 60),
    }

    def __init__(
        self,
        *,
        jwt_secret: str,
        pool: asyncpg.Pool,
        fanout: RoomFanout,
        presence: Presence,
        presence_news: PresenceNews,
        limiter: SendRateLimiter,
        handoff: ModerationHandoff,
        screen: Screen,
        store: GroupCommitStore,
    ) -> None:
        super().__init__("/chat", jwt_secret=jwt_secret)
        self._pool = pool
        self._fanout = fanout
        self._presence = presence
        self._presence_news = presence_news
        self._limiter = limiter
        self._handoff = handoff
        self._screen = screen
        self._store = store

    async def _member(self, sid: str, room: UUID) -> Principal:
        """The caller, once shown to be a member of `room` (joined here, or per PostgreSQL)."""
        principal = await self.principal(sid)
        if room not in self._fanout.local_rooms(sid):
            await self._fanout.reads.check_member(room, principal.user_id)
        return principal

    @event("join", JoinPayload)
    async def join(self, sid: str, payload: JoinPayload) -> Ack:
        principal = await self.principal(sid)
        joined = await self._fanout.join(payload.room, sid, principal.user_id, payload.since_seq)
        arrival = await self._presence.arrive(payload.room, principal.user_id, sid)
        if not self.server.manager.is_connected(sid, "/chat"):
            # It left while joining, after its disconnect handler ran: nothing would end this.
            await self._leave(sid, payload.room, principal)
            raise EventError(ErrorCode.unavailable, "the connection closed while joining")
        if arrival.worth_announcing:
            self._presence_news.tell(payload.room, principal.user_id, True, skip_sid=sid)
        return ok(
            room=str(payload.room),
            last_seq=joined.last_seq,
            missed=[message.wire() for message in joined.missed],
            has_more=joined.has_more,
            online=arrival.online,
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
            self._presence_news.tell(room, principal.user_id, False)

    async def on_disconnect(self, sid: str, *_: Any) -> None:
        principal = await self.principal(sid)
        # A draining replica's clients reconnect to the others at once: their presence is
        # handed over, not ended, so their rooms are not told they left and came back.
        moving = self.server.drain.refusing
        for room in self._fanout.local_rooms(sid):
            if moving:
                await self._fanout.leave(room, sid)
                self._presence.hand_over(room, principal.user_id, sid)
            else:
                await self._leave(sid, room, principal)

    def _screened(self, body: str) -> str:
        """The body as it may be stored (the pre-send screen), or the refusal: send and edit."""
        screened = self._screen(checked_body(body))
        if screened.refusal is not None:
            raise EventError(ErrorCode.forbidden, screened.refusal)
        return screened.body

    @event("send", SendPayload)
    async def send(self, sid: str, payload: SendPayload) -> Ack:
        body = self._screened(payload.body)
        principal = await self.principal(sid)
        if not await self._limiter.allow(principal.user_id):
            raise EventError(ErrorCode.rate_limited, "too many messages; slow down")
        message, is_new = await self._store.store(
            NewMessage(payload.room, principal, payload.client_id, body)
        )
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
        """An edit is held to everything a send is: the screen, the posting rules, scoring."""
        body = self._screened(payload.body)
        principal = await self.principal(sid)
        message = await edit_message(self._pool, payload.room, payload.id, principal.user_id, body)
        wire = message.wire()
        await self._fanout.publish(
            payload.room,
            "message_edited",
            {key: wire[key] for key in ("room", "id", "seq", "body", "edited_at")},
        )
        self._handoff.submit(message)
        return ok(message=wire)

    @event("delete", DeletePayload)
    async def delete(self, sid: str, payload: DeletePayload) -> Ack:
        principal = await self._member(sid, payload.room)
        message = await redact_message(self._pool, payload.room, payload.id, principal)
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
        # NotAMember when they left since `_member` looked
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
        flag = await report_message(
            self._pool, payload.room, payload.id, principal.user_id, payload.reason
        )
        await self._handoff.announce_flag(flag.wire())
        return ok(flag_id=str(flag.id))
