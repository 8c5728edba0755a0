"""Room fan-out: deliver a room's events to its members on this replica and carry them to every
other replica over Redis pub/sub.

PostgreSQL is the source of truth and Redis only the bus, so a lost or late publication costs
latency, never a message: each replica keeps, per local room, the seq it delivered last (its
cursor). A message at or below the cursor is a repeat and is dropped. A message past the
cursor's successor waits briefly in the room's reorder buffer, since concurrent sends finish
out of order; if the gap is still open after `_GAP_WAIT_S` (a publication lost, or sent while
Redis was down), the missing messages are read from PostgreSQL and delivered first. After every
(re)subscription, and every few seconds as a safety net, local rooms are compared with
PostgreSQL and caught up.

Publications go through a bounded queue drained by one task in pipelined batches, so a Redis
outage never delays an acknowledgement. The subscription itself is a `realtime.bus.Subscription`.

Moderators may watch a room read-only from the `/moderation` namespace: watchers get the room's
messages, edits and deletions, and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis
import socketio

from domain.messages import MAX_MISSED, Message, last_seq, messages_after
from realtime.bus import Subscription
from realtime.metrics import FANOUT_CAUGHT_UP, FANOUT_PUBLISH_FAILURES, FANOUT_SUBSCRIBED

log = logging.getLogger(__name__)

_RESYNC_EVERY_S = 5.0
_GAP_WAIT_S = 0.25
_PUBLISH_QUEUE = 20_000
_PUBLISH_BATCH = 500
WATCHED_EVENTS = frozenset({"message", "message_edited", "message_deleted"})
WATCH_NAMESPACE = "/moderation"


def watch_room(room: UUID) -> str:
    """The Socket.IO room, in the moderation namespace, of a chat room's watchers."""
    return f"watch:{room}"


@dataclass
class _LocalRoom:
    cursor: int
    members: dict[str, UUID] = field(default_factory=dict)  # sid -> user
    watchers: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    early: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> message, past a gap
    gap_timer: asyncio.TimerHandle | None = None

    @property
    def empty(self) -> bool:
        return not self.members and not self.watchers


@dataclass(frozen=True)
class JoinResult:
    last_seq: int
    missed: list[Message]
    has_more: bool


def _forget(index: dict[str, set[UUID]], sid: str, room: UUID) -> None:
    rooms = index.get(sid)
    if rooms is not None:
        rooms.discard(room)
        if not rooms:
            del index[sid]


class RoomNotFound(Exception):
    """The room does not exist."""


class RoomFanout:
    """One per replica, for `/chat`. `start()` it with the app, `stop()` it on shutdown."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        channel: str,
        replica_id: str,
    ) -> None:
        self._sio = sio
        self._pool = pool
        self._redis = redis
        self._replica_id = replica_id
        self._replica_bytes = replica_id.encode()
        self._rooms: dict[UUID, _LocalRoom] = {}
        self._joined: dict[str, set[UUID]] = {}  # sid -> rooms it is a member of here
        self._watching: dict[str, set[UUID]] = {}  # sid -> rooms it watches here
        self._outbox: asyncio.Queue[str] = asyncio.Queue(_PUBLISH_QUEUE)
        self._subscription = Subscription(
            redis, channel, self._receive, on_subscribed=self._subscribed, on_lost=self._lost
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._gap_tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._subscription.start()
        self._tasks = [
            asyncio.create_task(self._publish_forever(), name="fanout-publish"),
            asyncio.create_task(self._resync_forever(), name="fanout-resync"),
        ]

    async def stop(self) -> None:
        await self._subscription.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # local rooms

    async def _locked_room(self, room: UUID) -> _LocalRoom:
        """The room's local state with its lock held; the caller releases it."""
        while True:
            local = self._rooms.get(room)
            if local is None:
                newest = await last_seq(self._pool, room)
                if newest is None:
                    raise RoomNotFound(str(room))
                local = self._rooms.setdefault(room, _LocalRoom(cursor=newest))
            await local.lock.acquire()
            if self._rooms.get(room) is local:
                return local
            local.lock.release()  # emptied and dropped while we waited: start over

    def _drop_if_empty(self, room: UUID, local: _LocalRoom) -> None:
        if local.empty and self._rooms.get(room) is local:
            del self._rooms[room]
            if local.gap_timer is not None:
                local.gap_timer.cancel()

    async def join(self, room: UUID, sid: str, user: UUID, since_seq: int | None) -> JoinResult:
        """Put `sid` in the room and return what it missed after `since_seq`.

        Under the room's lock, so no live delivery interleaves: everything at or below the
        cursor comes in `missed`, everything after it arrives live, each exactly once.
        """
        local = await self._locked_room(room)
        try:
            await self._sio.enter_room(sid, str(room), namespace="/chat")
            local.members[sid] = user
            self._joined.setdefault(sid, set()).add(room)
            missed: list[Message] = []
            if since_seq is not None and since_seq < local.cursor:
                missed = await messages_after(
                    self._pool, room, since_seq, local.cursor, limit=MAX_MISSED + 1
                )
            return JoinResult(local.cursor, missed[:MAX_MISSED], len(missed) > MAX_MISSED)
        finally:
            local.lock.release()

    async def leave(self, room: UUID, sid: str) -> None:
        await self._sio.leave_room(sid, str(room), namespace="/chat")
        _forget(self._joined, sid, room)
        local = self._rooms.get(room)
        if local is not None:
            local.members.pop(sid, None)
            self._drop_if_empty(room, local)

    async def watch(self, room: UUID, sid: str) -> None:
        local = await self._locked_room(room)
        try:
            await self._sio.enter_room(sid, watch_room(room), namespace=WATCH_NAMESPACE)
            local.watchers.add(sid)
            self._watching.setdefault(sid, set()).add(room)
        finally:
            local.lock.release()

    async def unwatch(self, room: UUID, sid: str) -> None:
        await self._sio.leave_room(sid, watch_room(room), namespace=WATCH_NAMESPACE)
        _forget(self._watching, sid, room)
        local = self._rooms.get(room)
        if local is not None:
            local.watchers.discard(sid)
            self._drop_if_empty(room, local)

    def local_rooms(self, sid: str) -> list[UUID]:
        return list(self._joined.get(sid, ()))

    def watched_rooms(self, sid: str) -> list[UUID]:
        return list(self._watching.get(sid, ()))

    # events

    async def publish_message(self, room: UUID, seq: int, data: dict[str, Any]) -> None:
        """Deliver a stored message (`data` is its wire form) here, in seq order, and send it
        to the other replicas."""
        await self._deliver(room, seq, data)
        self._enqueue({"r": str(room), "s": seq, "e": "message", "d": data})

    async def publish(
        self, room: UUID, event: str, data: dict[str, Any], skip_sid: str | None = None
    ) -> None:
        """Emit an event without a seq (edits, deletions, typing, receipts, presence)."""
        await self._emit(room, event, data, skip_sid)
        self._enqueue({"r": str(room), "e": event, "d": data})

    async def evict(self, room: UUID, user: UUID, reason: str) -> None:
        """Take a (banned) user's connections out of the room on every replica."""
        await self._evict_here(room, user, reason)
        self._enqueue({"r": str(room), "e": "removed", "u": str(user), "d": {"reason": reason}})

    async def _evict_here(self, room: UUID, user: UUID, reason: str) -> None:
        local = self._rooms.get(room)
        if local is None:
            return
        for sid in [sid for sid, member in local.members.items() if member == user]:
            await self._sio.emit(
                "removed", {"room": str(room), "reason": reason}, to=sid, namespace="/chat"
            )
            await self.leave(room, sid)

    async def _emit(
        self, room: UUID, event: str, data: dict[str, Any], skip_sid: str | None = None
    ) -> None:
        await self._sio.emit(event, data, room=str(room), skip_sid=skip_sid, namespace="/chat")
        local = self._rooms.get(room)
        if event in WATCHED_EVENTS and local is not None and local.watchers:
            await self._sio.emit(event, data, room=watch_room(room), namespace=WATCH_NAMESPACE)

    # delivery

    async def _deliver(self, room: UUID, seq: int, data: dict[str, Any]) -> None:
        local = self._rooms.get(room)
        if local is None:
            return
        async with local.lock:
            if seq <= local.cursor:
                return
            if seq > local.cursor + 1:
                local.early[seq] = data
                if local.gap_timer is None:
                    local.gap_timer = asyncio.get_running_loop().call_later(
                        _GAP_WAIT_S, self._close_gap_later, room
                    )
                return
            await self._emit(room, "message", data)
            local.cursor = seq
            await self._release_early(room, local)

    async def _release_early(self, room: UUID, local: _LocalRoom) -> None:
        """Deliver buffered messages that follow the cursor without a gap."""
        for seq in [seq for seq in local.early if seq <= local.cursor]:
            del local.early[seq]
        while (data := local.early.pop(local.cursor + 1, None)) is not None:
            await self._emit(room, "message", data)
            local.cursor += 1
        if not local.early and local.gap_timer is not None:
            local.gap_timer.cancel()
            local.gap_timer = None

    def _close_gap_later(self, room: UUID) -> None:
        local = self._rooms.get(room)
        if local is not None:
            local.gap_timer = None
            self._gap_tasks.add(task := asyncio.create_task(self._close_gap(room, local)))
            task.add_done_callback(self._gap_tasks.discard)

    async def _close_gap(self, room: UUID, local: _LocalRoom) -> None:
        """The gap outlived the reorder wait: read what is missing from PostgreSQL."""
        try:
            async with local.lock:
                if local.early:
                    await self._catch_up(room, local, min(local.early) - 1)
        except Exception as exc:  # the periodic resync tries again
            log.warning("fan-out could not close a gap in %s: %s", room, exc)

    async def _catch_up(self, room: UUID, local: _LocalRoom, up_to: int) -> None:
        """Deliver, from PostgreSQL, every message after the cursor up to `up_to`, then
        whatever waited in the reorder buffer behind them."""
        while local.cursor < up_to:
            batch = await messages_after(self._pool, room, local.cursor, up_to)
            if not batch:
                break
            for message in batch:
                await self._emit(room, "message", message.wire())
                local.cursor = message.seq
                FANOUT_CAUGHT_UP.inc()
        await self._release_early(room, local)

    async def _resync(self) -> None:
        if not self._rooms:
            return
        rows = await self._pool.fetch(
            "SELECT id, last_seq FROM conversations WHERE id = ANY($1)", list(self._rooms)
        )
        for row in rows:
            local = self._rooms.get(row["id"])
            if local is not None and row["last_seq"] > local.cursor:
                async with local.lock:
                    await self._catch_up(row["id"], local, row["last_seq"])

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(_RESYNC_EVERY_S)
            try:
                await self._resync()
            except Exception as exc:
                log.warning("fan-out resync failed: %s", exc)

    # Redis

    def _enqueue(self, publication: dict[str, Any]) -> None:
        # "<replica>|<room>|<json>": receivers skip their own and foreign rooms unparsed.
        header = f"{self._replica_id}|{publication['r']}|"
        try:
            self._outbox.put_nowait(header + json.dumps(publication, separators=(",", ":")))
        except asyncio.QueueFull:
            log.warning("fan-out queue full; a publication is dropped (messages are resynced)")

    async def _publish_forever(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < _PUBLISH_BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for publication in batch:
                        pipe.publish(self._subscription.channel, publication)
                    await pipe.execute()
            except Exception as exc:  # Redis down: other replicas catch up from PostgreSQL
                log.warning("fan-out publish failed (%d dropped): %s", len(batch), exc)
                FANOUT_PUBLISH_FAILURES.inc(len(batch))
                await asyncio.sleep(0.5)

    async def _subscribed(self) -> None:
        FANOUT_SUBSCRIBED.set(1)
        await self._resync()

    def _lost(self) -> None:
        FANOUT_SUBSCRIBED.set(0)

    async def _receive(self, raw: bytes) -> None:
        origin, room_id, body = raw.split(b"|", 2)
        if origin == self._replica_bytes:
            return
        room = UUID(room_id.decode())
        if room not in self._rooms:
            return
        publication = json.loads(body)
        if "s" in publication:
            await self._deliver(room, publication["s"], publication["d"])
        elif "u" in publication:
            await self._evict_here(room, UUID(publication["u"]), publication["d"]["reason"])
        else:
            await self._emit(room, publication["e"], publication["d"])
