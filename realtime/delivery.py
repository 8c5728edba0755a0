"""The rooms one replica hosts, and their messages delivered there in seq order, each once.

A message past its room's cursor's successor waits briefly (`RoomCursor`), since concurrent
sends finish out of order; if the gap is still open after `_GAP_WAIT_S` (a publication lost, or
sent while Redis was down), the missing messages are read from PostgreSQL and delivered first.
`resync` compares every hosted room with PostgreSQL and catches it up: soon after a room's
channel is subscribed again (`resync_soon`), and every few seconds as a safety net.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from domain.chat.catch_up import newest_seqs
from domain.chat.messages import messages_after
from domain.chat.posting import RoomAccess
from realtime.background import Coalesced, every
from realtime.metrics import FANOUT_CAUGHT_UP
from realtime.room_cursor import RoomCursor

log = logging.getLogger(__name__)

_RESYNC_EVERY_S = 5.0
_GAP_WAIT_S = 0.25

# Emits a room's event here: (room, event, data).
Emit = Callable[[UUID, str, dict[str, Any]], Awaitable[None]]


@dataclass
class HostedRoom:
    """A room with a member or watcher here. Until `opened` (its channel subscribed, then its
    newest seq read as the cursor) nothing is delivered to it."""

    cursor: RoomCursor[dict[str, Any]] = field(default_factory=lambda: RoomCursor(0))
    members: dict[str, UUID] = field(default_factory=dict)  # sid -> user
    watchers: set[str] = field(default_factory=set)
    arriving: int = 0  # joins and watches under way, which keep the room hosted
    opened: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    gap_timer: asyncio.TimerHandle | None = None
    removals: int = 0  # users taken out of the room here while it was hosted
    resubscriptions: int = 0  # its channel subscribed again: publications may have been lost
    # user -> `removals` at their latest removal, kept only while joins are under way
    removed_while_arriving: dict[UUID, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.members and not self.watchers and not self.arriving

    def arrived(self) -> None:
        """One join or watch is done; with none under way, no removal needs keeping."""
        self.arriving -= 1
        if not self.arriving:
            self.removed_while_arriving.clear()

    def record_removal(self, user: UUID) -> None:
        """A user was taken out: a join of theirs under way must not complete."""
        self.removals += 1
        if self.arriving:
            self.removed_while_arriving[user] = self.removals

    def removed_since(self, user: UUID, removals_seen: int) -> bool:
        """Whether `user` was taken out after `removals` was `removals_seen` (by an arrival,
        which keeps the record until it is done)."""
        return self.removed_while_arriving.get(user, 0) > removals_seen

    def stop_gap_timer(self) -> None:
        if self.gap_timer is not None:
            self.gap_timer.cancel()
            self.gap_timer = None


class Arrival(NamedTuple):
    """A join or watch let into a hosted room (its lock held)."""

    hosted: HostedRoom
    removals_seen: int  # the room's removals before anything was read for this arrival
    resubscriptions_seen: int  # and its resubscriptions
    access: RoomAccess | None  # the joiner's, read with the cursor when this opened the room


class OrderedDelivery:
    """Delivers messages to the rooms in `rooms` (which its owner fills and empties)."""

    def __init__(self, pool: asyncpg.Pool, rooms: dict[UUID, HostedRoom], emit: Emit) -> None:
        self._pool = pool
        self._rooms = rooms
        self._emit = emit
        self._resync_loop = every(_RESYNC_EVERY_S, self.resync, "fan-out resync")
        self._gap_tasks: set[asyncio.Task[None]] = set()
        self._resync_now = Coalesced(self.resync, "fan-out resync after a resubscription")

    def start(self) -> None:
        self._resync_loop.start()

    async def stop(self) -> None:
        await self._resync_loop.stop()
        await self._resync_now.stop()

    def resync_soon(self) -> None:
        """Resync once now (see `Coalesced`)."""
        self._resync_now.soon()

    async def deliver(self, room: UUID, seq: int, data: dict[str, Any]) -> None:
        """Deliver message `seq` of a hosted room (`data` is its wire form) in order."""
        hosted = self._rooms.get(room)
        if hosted is None:
            return
        async with hosted.lock:
            if not hosted.opened:
                return  # its opener's cursor covers it, or a publication comes after it
            for message in hosted.cursor.offer(seq, data):
                await self._emit(room, "message", message)
            if hosted.cursor.gap_end is None:
                hosted.stop_gap_timer()
            elif hosted.gap_timer is None:
                hosted.gap_timer = asyncio.get_running_loop().call_later(
                    _GAP_WAIT_S, self._close_gap_later, room
                )

    def _close_gap_later(self, room: UUID) -> None:
        hosted = self._rooms.get(room)
        if hosted is not None:
            hosted.gap_timer = None
            self._gap_tasks.add(task := asyncio.create_task(self._close_gap(room, hosted)))
            task.add_done_callback(self._gap_tasks.discard)

    async def _close_gap(self, room: UUID, hosted: HostedRoom) -> None:
        """The gap outlived the reorder wait: read what is missing from PostgreSQL."""
        try:
            async with hosted.lock:
                gap_end = hosted.cursor.gap_end
                if gap_end is not None:
                    await self.catch_up(room, hosted, gap_end)
        except Exception as exc:  # the periodic resync tries again
            log.warning("fan-out could not close a gap in %s: %s", room, exc)

    async def catch_up(self, room: UUID, hosted: HostedRoom, up_to: int) -> None:
        """Deliver, from PostgreSQL, every message after the cursor up to `up_to`, then
        whatever waited in the reorder buffer behind them. The room's lock must be held."""
        cursor = hosted.cursor
        while cursor.seq < up_to:
            batch = await messages_after(self._pool, room, cursor.seq, up_to)
            if not batch:
                break
            for message in batch:
                await self._emit(room, "message", message.wire())
                cursor.delivered(message.seq)
                FANOUT_CAUGHT_UP.inc()
        for data in cursor.release():
            await self._emit(room, "message", data)
        if cursor.gap_end is None:
            hosted.stop_gap_timer()

    async def resync(self) -> None:
        """Catch every hosted room up with PostgreSQL."""
        if not self._rooms:
            return
        for room, newest in (await newest_seqs(self._pool, self._rooms)).items():
            hosted = self._rooms.get(room)
            if hosted is not None and newest > hosted.cursor.seq:
                async with hosted.lock:
                    if hosted.opened:
                        await self.catch_up(room, hosted, newest)
