"""Presence changes reach a room in batches: each is announced within ANNOUNCE_DELAY_S, together
with the others of that window, in the order they happened.

A room of 500 filling up (or a replica's clients arriving at once) used to cost a write to every
other member per arrival, and a fresh look-up of the room's recipients each time, since every
arrival changes them: 125,000 writes for the room. Announced together, all of a window's changes
reach each member in one write (`realtime.fastpath`) from one look-up. Presence has no order
with messages in the contract; a member may see a message before its sender's arrival.

At most MAX_WAITING changes wait; past that they go out at once. Those waiting when the replica
stops are not announced: its clients are being disconnected, and the others learn of departures
from the presence leases (`realtime.presence`).

Each replica announces what it saw, so two replicas' announcements can reach a room in the
other order than their changes: one replica found the user gone (a departure, or a dead
replica's lease reaped) just before the user arrived on another, whose "online" went out first.
A departure is therefore announced only if the user is still offline when its batch goes out;
the arrival that overtook it has been announced by its own replica."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple
from uuid import UUID

from realtime.background import Coalesced
from realtime.fanout import RoomFanout

log = logging.getLogger(__name__)

ANNOUNCE_DELAY_S = 0.05
MAX_WAITING = 2000

# Whether each (room, user) is online now, on any replica (`Presence.online_now`).
OnlineNow = Callable[[Sequence[tuple[UUID, UUID]]], Awaitable[list[bool]]]


class _Change(NamedTuple):
    room: UUID
    user: UUID
    online: bool
    skip_sid: str | None  # the connection that arrived: it knows


class PresenceNews:
    """One per replica, for `/chat`, announcing through the room fan-out."""

    def __init__(self, fanout: RoomFanout, online_now: OnlineNow) -> None:
        self._fanout = fanout
        self._online_now = online_now
        self._waiting: list[_Change] = []
        self._full = asyncio.Event()  # MAX_WAITING changes wait: announce them now
        self._stopped = False
        self._announcing = Coalesced(self._announce_after_delay, "presence announcements")

    async def start(self) -> None:
        """Nothing runs until a change is told."""

    async def stop(self) -> None:
        self._stopped = True
        await self._announcing.stop()

    def tell(self, room: UUID, user: UUID, online: bool, skip_sid: str | None = None) -> None:
        """Announce that `user` came online (or went offline) in `room`, except to `skip_sid`."""
        if self._stopped:  # the replica is shutting down: see the module's doc
            return
        self._waiting.append(_Change(room, user, online, skip_sid))
        if len(self._waiting) >= MAX_WAITING:
            self._full.set()
        self._announcing.soon()

    async def _announce_after_delay(self) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation (stop) that
        # comes as the batch fills, and the next run would hold the stop for a whole window.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ANNOUNCE_DELAY_S):
                await self._full.wait()
        self._full.clear()
        waiting, self._waiting = self._waiting, []
        waiting = await self._still_true(waiting)
        # No await in between suspends (the fan-out's emits only collect frames), so they all
        # go out in the same write per recipient.
        for change in waiting:
            data = {"room": str(change.room), "user_id": str(change.user), "online": change.online}
            try:
                await self._fanout.publish(change.room, "presence", data, skip_sid=change.skip_sid)
            except Exception:  # the others of the batch still go out
                log.exception("presence announcement failed")

    async def _still_true(self, changes: list[_Change]) -> list[_Change]:
        """The changes without the departures of users online again (see the module's doc)."""
        departures = [(change.room, change.user) for change in changes if not change.online]
        if not departures:
            return changes
        try:
            online = await self._online_now(departures)
        except Exception as exc:  # presence is best effort while Redis is away: tell them all
            log.warning("presence departures announced unchecked: %s", exc)
            return changes
        back = {pair for pair, now in zip(departures, online, strict=True) if now}
        return [
            change for change in changes if change.online or (change.room, change.user) not in back
        ]
