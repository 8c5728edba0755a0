"""Room fan-out: deliver a room's events to its members on this replica and carry them to every
other replica over Redis pub/sub.

PostgreSQL is the source of truth and Redis only the bus, so a lost or late publication costs
latency, never a message: each replica keeps, per local room, the seq it delivered last (its
cursor). A message at or below the cursor is a repeat and is dropped; a message past the
cursor's successor means others were missed (overtaken, or published while Redis was down), and
those are read from PostgreSQL and delivered first. After every (re)subscription, and every few
seconds as a safety net, local rooms are compared with PostgreSQL and caught up.

Known failure modes of a pub/sub listener, and what this one does about them:
- a listener that dies silently: it runs under a loop that logs, backs off (at most 2 s) and
  resubscribes, forever, so fan-out resumes within seconds of Redis coming back;
- a Redis call with no socket timeout: every connection has socket and connect timeouts and a
  health-check PING, so a dead or half-open connection raises instead of hanging;
- publishing on the ack path: publications go through a bounded queue drained by one task in
  pipelined batches, so a Redis outage never delays an acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis
import socketio

from domain.messages import MAX_MISSED, Message, last_seq, messages_after
from realtime.metrics import FANOUT_CAUGHT_UP, FANOUT_PUBLISH_FAILURES, FANOUT_SUBSCRIBED

log = logging.getLogger(__name__)

_RESYNC_EVERY_S = 5.0
_MAX_BACKOFF_S = 2.0
_PUBLISH_QUEUE = 20_000
_PUBLISH_BATCH = 500


@dataclass
class _LocalRoom:
    cursor: int
    members: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True)
class JoinResult:
    last_seq: int
    missed: list[Message]
    has_more: bool


class RoomNotFound(Exception):
    """The room does not exist."""


class RoomFanout:
    """One per namespace and replica. `start()` it with the app, `stop()` it on shutdown."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        namespace: str,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        channel: str,
        replica_id: str,
    ) -> None:
        self._sio = sio
        self._namespace = namespace
        self._pool = pool
        self._redis = redis
        self._channel = channel
        self._replica_id = replica_id
        self._rooms: dict[UUID, _LocalRoom] = {}
        self._outbox: asyncio.Queue[str] = asyncio.Queue(_PUBLISH_QUEUE)
        self._tasks: list[asyncio.Task[None]] = []
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="fanout-listen"),
            asyncio.create_task(self._publish_forever(), name="fanout-publish"),
            asyncio.create_task(self._resync_forever(), name="fanout-resync"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # membership of local rooms

    async def join(self, room: UUID, sid: str, since_seq: int | None) -> JoinResult:
        """Put `sid` in the room and return what it missed after `since_seq`.

        Under the room's lock, so no live delivery interleaves: everything at or below the
        cursor comes in `missed`, everything after it arrives live, each exactly once.
        """
        while True:
            local = self._rooms.get(room)
            if local is None:
                newest = await last_seq(self._pool, room)
                if newest is None:
                    raise RoomNotFound(str(room))
                local = self._rooms.setdefault(room, _LocalRoom(cursor=newest))
            async with local.lock:
                if self._rooms.get(room) is not local:
                    continue  # the last member left while we waited; start over
                await self._sio.enter_room(sid, str(room), namespace=self._namespace)
                local.members.add(sid)
                missed: list[Message] = []
                if since_seq is not None and since_seq < local.cursor:
                    missed = await messages_after(
                        self._pool, room, since_seq, local.cursor, limit=MAX_MISSED + 1
                    )
                return JoinResult(local.cursor, missed[:MAX_MISSED], len(missed) > MAX_MISSED)

    async def leave(self, room: UUID, sid: str) -> None:
        await self._sio.leave_room(sid, str(room), namespace=self._namespace)
        local = self._rooms.get(room)
        if local is not None:
            local.members.discard(sid)
            if not local.members:
                del self._rooms[room]

    def local_rooms(self, sid: str) -> list[UUID]:
        return [room for room, local in self._rooms.items() if sid in local.members]

    # events

    async def publish_message(self, message: Message) -> None:
        """Deliver a stored message here, in seq order, and send it to the other replicas."""
        data = message.wire()
        await self._deliver(message.room, message.seq, data)
        self._enqueue(
            {
                "o": self._replica_id,
                "r": str(message.room),
                "s": message.seq,
                "e": "message",
                "d": data,
            }
        )

    async def publish(
        self, room: UUID, event: str, data: dict[str, Any], skip_sid: str | None = None
    ) -> None:
        """Emit an event without a seq (edits, deletions, typing, receipts, presence)."""
        await self._sio.emit(
            event, data, room=str(room), skip_sid=skip_sid, namespace=self._namespace
        )
        self._enqueue({"o": self._replica_id, "r": str(room), "e": event, "d": data})

    # delivery

    async def _deliver(self, room: UUID, seq: int, data: dict[str, Any]) -> None:
        local = self._rooms.get(room)
        if local is None:
            return
        async with local.lock:
            if seq <= local.cursor:
                return
            if seq > local.cursor + 1:
                await self._catch_up(room, local, seq - 1)
            await self._sio.emit("message", data, room=str(room), namespace=self._namespace)
            local.cursor = seq

    async def _catch_up(self, room: UUID, local: _LocalRoom, up_to: int) -> None:
        """Deliver, from PostgreSQL, every message after the cursor up to `up_to`."""
        while local.cursor < up_to:
            batch = await messages_after(self._pool, room, local.cursor, up_to)
            if not batch:
                return
            for message in batch:
                await self._sio.emit(
                    "message", message.wire(), room=str(room), namespace=self._namespace
                )
                local.cursor = message.seq
                FANOUT_CAUGHT_UP.inc()

    async def _resync(self, rooms: Iterable[UUID]) -> None:
        wanted = list(rooms)
        if not wanted:
            return
        rows = await self._pool.fetch(
            "SELECT id, last_seq FROM conversations WHERE id = ANY($1)", wanted
        )
        for row in rows:
            local = self._rooms.get(row["id"])
            if local is not None and row["last_seq"] > local.cursor:
                async with local.lock:
                    await self._catch_up(row["id"], local, row["last_seq"])

    # Redis

    def _enqueue(self, publication: dict[str, Any]) -> None:
        try:
            self._outbox.put_nowait(json.dumps(publication, separators=(",", ":")))
        except asyncio.QueueFull:
            log.warning(
                "fan-out queue full; dropping a publication (PostgreSQL resync covers messages)"
            )

    async def _publish_forever(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < _PUBLISH_BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for publication in batch:
                        pipe.publish(self._channel, publication)
                    await pipe.execute()
            except Exception as exc:  # Redis down: other replicas catch up from PostgreSQL
                log.warning("fan-out publish failed (%d dropped): %s", len(batch), exc)
                FANOUT_PUBLISH_FAILURES.inc(len(batch))
                await asyncio.sleep(0.5)

    async def _listen_forever(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._channel)
                    self.subscribed.set()
                    FANOUT_SUBSCRIBED.set(1)
                    backoff = 0.1
                    log.info("fan-out subscribed to %s", self._channel)
                    await self._resync(list(self._rooms))
                    while True:
                        publication = await pubsub.get_message(timeout=1.0)
                        if publication is not None:
                            await self._receive(publication["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.subscribed.is_set():
                    log.warning("fan-out lost Redis (%s); resubscribing", exc)
                self.subscribed.clear()
                FANOUT_SUBSCRIBED.set(0)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)

    async def _receive(self, raw: bytes) -> None:
        publication = json.loads(raw)
        if publication["o"] == self._replica_id:
            return
        room = UUID(publication["r"])
        if room not in self._rooms:
            return
        if "s" in publication:
            await self._deliver(room, publication["s"], publication["d"])
        else:
            await self._sio.emit(
                publication["e"], publication["d"], room=str(room), namespace=self._namespace
            )

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(_RESYNC_EVERY_S)
            try:
                await self._resync(list(self._rooms))
            except Exception as exc:
                log.warning("fan-out resync failed: %s", exc)
