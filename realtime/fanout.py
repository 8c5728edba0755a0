"""Room fan-out: deliver a room's events to its members on this replica and carry them to the
other replicas hosting the room over Redis pub/sub, on the room's own channel.

PostgreSQL is the source of truth and Redis only the bus, so a lost or late publication costs
latency, never a message: each replica delivers the messages of the rooms it hosts in seq
order, each once, catching up from PostgreSQL where a publication went missing
(`realtime.delivery`). What travels is a `domain.chat.room_channel.Publication`, sent through a
`realtime.outbox.Outbox` (a Redis outage never delays an acknowledgement) to the room's channel
(`realtime.room_channels`), which a replica listens to while it hosts the room: while a
connection here is a member or a watcher of it. So a replica receives the traffic of its own
rooms, and the number of channels it listens to is bounded by its connections (each joins at
most MAX_ROOMS_PER_CONNECTION rooms and watches at most MAX_WATCHED_PER_CONNECTION).

A room is opened here by subscribing to its channel, waiting for Redis to confirm it, and only
then reading its newest seq from PostgreSQL as the cursor: a message stored after that read is
published after the subscription, so it arrives; one stored before it is at or below the cursor,
so it comes from PostgreSQL (`missed`). Likewise a joiner's membership is read after the
subscription (again if it is subscribed again meanwhile), and removals heard while joins are
under way are kept: a leave committed after that read refuses the join. Nothing falls between.

A room may also be watched read-only (`on_watched`, for moderators): its messages, edits and
deletions only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from uuid import UUID

import asyncpg
import socketio

from domain.chat.errors import NotAMember, RoomNotFound
from domain.chat.messages import MAX_MISSED, Message
from domain.chat.posting import RoomAccess
from domain.chat.room_channel import Kind, Publication, header
from domain.redis_client import RedisClient
from realtime.cluster_channels import open_room_channels
from realtime.delivery import Arrival, HostedRoom, OrderedDelivery
from realtime.metrics import FANOUT_RECEIVED
from realtime.outbox import Outbox
from realtime.room_cursor import RoomCursor
from realtime.room_reads import JoinResult, RoomReads
from realtime.socket_rooms import SocketRooms

WATCHED_EVENTS = frozenset({"message", "message_edited", "message_deleted"})
# A web client joins every conversation it lists; a moderator watches a handful of rooms.
MAX_ROOMS_PER_CONNECTION = 500
MAX_WATCHED_PER_CONNECTION = 100

_applied = FANOUT_RECEIVED.labels("applied")
_own = FANOUT_RECEIVED.labels("own")
_not_hosted = FANOUT_RECEIVED.labels("not_hosted")

# Hands a watched room's event (room, event, data) to its watchers.
WatchedEvent = Callable[[UUID, str, dict[str, Any]], Awaitable[None]]


class RoomFanout:
    """One per replica, for `/chat`. `start()` it with the app, `stop()` it on shutdown."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        pool: asyncpg.Pool,
        redis: RedisClient,
        channel_prefix: str,
        replica_id: str,
    ) -> None:
        """Room R's channel is `<channel_prefix>:R`."""
        self._sio = sio
        self._pool = pool
        self.replica_id = replica_id
        self._replica_bytes = replica_id.encode()
        self._rooms: dict[UUID, HostedRoom] = {}
        self._delivery = OrderedDelivery(pool, self._rooms, self._emit)
        self._joined = SocketRooms()  # the rooms each connection is a member of here
        self._watching = SocketRooms()  # the rooms each connection watches here
        self._to_watchers: WatchedEvent | None = None
        self._catch_ups: list[Callable[[UUID], None]] = []
        self.channels = open_room_channels(
            redis, channel_prefix, replica_id, self._receive, self._resubscribed
        )
        self._outbox = Outbox(redis, self.channels)
        self.reads = RoomReads(pool)  # also the namespace's membership checks

    def on_watched(self, to_watchers: WatchedEvent) -> None:
        """Hand each watched room's messages, edits and deletions to `to_watchers`."""
        self._to_watchers = to_watchers

    def on_resubscribed(self, catch_up: Callable[[UUID], None]) -> None:
        """Also call `catch_up(room)` when a room's channel is subscribed again (what was
        published on it meanwhile is lost)."""
        self._catch_ups.append(catch_up)

    async def start(self) -> None:
        await self.channels.start()
        self._outbox.start()
        self._delivery.start()

    async def stop(self) -> None:
        await self.channels.stop()
        await self._outbox.stop()
        await self._delivery.stop()

    # hosted rooms

    async def _arrive(self, room: UUID, joiner: UUID | None = None) -> Arrival:
        """The room's hosted state, opened, with its lock held and this arrival counted in
        it (so it stays hosted); the caller adds its member or watcher, then `_arrived`."""
        hosted = self._rooms.get(room)
        if hosted is None:
            hosted = self._rooms[room] = HostedRoom()
        hosted.arriving += 1
        arrival = Arrival(hosted, hosted.removals, hosted.resubscriptions, access=None)
        try:
            await hosted.lock.acquire()
            try:
                if not hosted.opened:
                    arrival = arrival._replace(access=await self._open(room, hosted, joiner))
            except BaseException:
                hosted.lock.release()
                raise
        except BaseException:
            await self._arrived(room, hosted, locked=False)
            raise
        return arrival

    async def _open(self, room: UUID, hosted: HostedRoom, joiner: UUID | None) -> RoomAccess:
        await self.channels.subscribe(room)  # confirmed by Redis (or caught up once it is)
        access = await self.reads.access(room, joiner)  # read after the subscription is confirmed
        if access is None:
            raise RoomNotFound()
        hosted.cursor = RoomCursor(access.last_seq)
        hosted.opened = True
        return access

    async def _arrived(self, room: UUID, hosted: HostedRoom, *, locked: bool = True) -> None:
        hosted.arrived()
        if locked:
            hosted.lock.release()
        await self._drop_if_empty(room, hosted)

    async def _drop_if_empty(self, room: UUID, hosted: HostedRoom) -> None:
        if hosted.empty and self._rooms.get(room) is hosted:
            del self._rooms[room]
            hosted.stop_gap_timer()
            await self.channels.unsubscribe(room)

    async def join(self, room: UUID, sid: str, user: UUID, since_seq: int | None) -> JoinResult:
        """Put `sid` in the room if `user` is a member; what it missed after `since_seq`. The
        member and cursor are set under the room's lock, so no live delivery interleaves: at or
        below the cursor comes in `missed` (read after the lock, one statement for a room's
        rejoining members), after it arrives live, each exactly once."""
        self._joined.check_bound(sid, room, MAX_ROOMS_PER_CONNECTION)
        rejoin = self._joined.has(sid, room)  # a member here: a removal would take it out
        arrival = await self._arrive(room, None if rejoin else user)
        hosted, access = arrival.hosted, arrival.access
        if not rejoin and access is None:
            hosted.lock.release()  # an open room's joiners read their memberships together
            try:
                await self.reads.check_member(room, user)
                await hosted.lock.acquire()
            except BaseException:
                await self._arrived(room, hosted, locked=False)
                raise
        try:
            if not rejoin and access is not None and not access.member:
                raise NotAMember()
            # Again, and counted at once: the connection's other joins may have landed.
            self._joined.check_bound(sid, room, MAX_ROOMS_PER_CONNECTION)
            if since_seq is not None and since_seq > hosted.cursor.seq:
                # It saw more than this replica has delivered (on a replica that died before
                # publishing): deliver those here first, or it would get them again live.
                await self._delivery.catch_up(room, hosted, since_seq)
            resubscriptions = arrival.resubscriptions_seen
            while not rejoin and hosted.resubscriptions != resubscriptions:
                resubscriptions = hosted.resubscriptions  # a leave published meanwhile is lost
                await self.reads.check_member(room, user)
            if hosted.removed_since(user, arrival.removals_seen):  # no await from here on
                raise NotAMember()
            await self._sio.enter_room(sid, str(room), namespace="/chat")  # raises if it left
            self._joined.add(sid, room)
            hosted.members[sid] = user
            cursor = hosted.cursor.seq
        finally:
            await self._arrived(room, hosted)
        missed: list[Message] = []
        if since_seq is not None and since_seq < cursor:
            missed = await self.reads.missed(room, since_seq, cursor)
        return JoinResult(cursor, missed[:MAX_MISSED], len(missed) > MAX_MISSED)

    async def leave(self, room: UUID, sid: str) -> None:
        await self._sio.leave_room(sid, str(room), namespace="/chat")
        self._joined.discard(sid, room)
        hosted = self._rooms.get(room)
        if hosted is not None:
            hosted.members.pop(sid, None)
            await self._drop_if_empty(room, hosted)

    async def watch(self, room: UUID, sid: str) -> None:
        """Host the room here while `sid` (of the namespace that registered `on_watched`)
        watches it."""
        self._watching.check_bound(sid, room, MAX_WATCHED_PER_CONNECTION)
        hosted = (await self._arrive(room)).hosted
        try:
            self._watching.check_bound(sid, room, MAX_WATCHED_PER_CONNECTION)
            hosted.watchers.add(sid)
            self._watching.add(sid, room)
        finally:
            await self._arrived(room, hosted)

    async def unwatch(self, room: UUID, sid: str) -> None:
        self._watching.discard(sid, room)
        hosted = self._rooms.get(room)
        if hosted is not None:
            hosted.watchers.discard(sid)
            await self._drop_if_empty(room, hosted)

    def local_rooms(self, sid: str) -> list[UUID]:
        return self._joined.of(sid)

    def local_members(self, rooms: Iterable[UUID]) -> dict[UUID, set[UUID]]:
        """The users with a connection joined here, in each of these rooms hosted here."""
        hosted = self._rooms
        return {room: set(hosted[room].members.values()) for room in rooms if room in hosted}

    def watched_rooms(self, sid: str) -> list[UUID]:
        return self._watching.of(sid)

    # events

    async def publish_message(self, room: UUID, seq: int, data: dict[str, Any]) -> None:
        """Deliver a stored message (its wire form `data`) here in seq order; send it on."""
        await self._delivery.deliver(room, seq, data)
        self._enqueue(Publication(room, Kind.message, "message", data, seq=seq))

    async def publish(
        self, room: UUID, event: str, data: dict[str, Any], skip_sid: str | None = None
    ) -> None:
        """Emit an event without a seq (edits, deletions, typing, receipts, presence)."""
        await self._emit(room, event, data, skip_sid)
        self._enqueue(Publication(room, Kind.event, event, data))

    async def evict(self, room: UUID, user: UUID, reason: str) -> None:
        """Take a (banned) user's connections out of the room on every replica."""
        await self.evict_here(room, user, reason)
        self._enqueue(Publication(room, Kind.removal, "removed", {"reason": reason}, user=user))

    async def evict_here(self, room: UUID, user: UUID, reason: str) -> None:
        """Take a user's connections out of the room on this replica only."""
        hosted = self._rooms.get(room)
        if hosted is None:
            return
        hosted.record_removal(user)
        for sid in [sid for sid, member in hosted.members.items() if member == user]:
            await self._sio.emit(
                "removed", {"room": str(room), "reason": reason}, to=sid, namespace="/chat"
            )
            await self.leave(room, sid)

    async def _emit(
        self, room: UUID, event: str, data: dict[str, Any], skip_sid: str | None = None
    ) -> None:
        await self._sio.emit(event, data, room=str(room), skip_sid=skip_sid, namespace="/chat")
        hosted = self._rooms.get(room)
        to_watchers = self._to_watchers
        if event in WATCHED_EVENTS and hosted is not None and hosted.watchers and to_watchers:
            await to_watchers(room, event, data)

    # Redis

    def _enqueue(self, publication: Publication) -> None:
        self._outbox.put(publication.room, publication.encode(self.replica_id))

    def _resubscribed(self, room: UUID) -> None:
        if (hosted := self._rooms.get(room)) is not None:
            hosted.resubscriptions += 1
        self._delivery.resync_soon()
        for catch_up in self._catch_ups:
            catch_up(room)

    async def _receive(self, raw: bytes) -> None:
        origin, room_id, body = header(raw)
        if origin == self._replica_bytes:
            _own.inc()
            return
        room = UUID(room_id.decode())
        if room not in self._rooms:
            _not_hosted.inc()
            return
        _applied.inc()
        publication = Publication.decode(room, body)
        if publication.kind is Kind.message:
            await self._delivery.deliver(room, publication.seq, publication.data)
        elif publication.kind is Kind.removal:
            assert publication.user is not None
            await self.evict_here(room, publication.user, publication.data["reason"])
        else:
            await self._emit(room, publication.event, publication.data)
