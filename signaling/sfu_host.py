"""The embedded SFU rooms of the consults pinned to this replica.

A consult's SfuRoom lives on one replica, the one that claimed it (signaling.sfu_claims); the
others forward their members' signals there (see ReplicaBus.send). The room's answers and
offers go back to each member through `deliver`, wherever they are connected. The claim ends
when the room empties.

While segments of the recordings made here wait for S3 and the local buffer nears its limit,
each recording consult's vet is told (`recording_storage`, through `tell_vet`), and again when
the buffer drains.

Per participant, the room's answer to an offer is delivered before any later room offer
(SfuRoom's contract), by one lock per participant around both.

A member publishes at most MAX_PUBLISHED_TRACKS tracks, counted over the whole call: the room
keeps a receiver and a forwarder for every track it is ever sent, and aiortc never reuses an
m-line, so a track stopped and replaced by another still counts. A description past that
raises TooManyTracks before the room sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Literal
from uuid import UUID

from aiortc import RTCSessionDescription

from domain.errors import Invalid, TooLarge
from domain.recordings.lifecycle import RecordingState
from domain.redis_client import RedisClient
from media.forwarding import Publication
from media.sdp_rules import IceCandidateInit
from media.sfu import SfuRoom, Source
from recordings.buffer import BufferPressure
from recordings.room import RoomRecording
from recordings.studio import Studio
from signaling.media_host import Closed, Deliver, Pc, from_media_server
from signaling.sdp import sending_media
from signaling.sfu_claims import SfuClaims

log = logging.getLogger(__name__)

MAX_PUBLISHED_TRACKS = 4  # camera and microphone, a screen share and its audio
# How long a closing replica waits for its recordings to reach S3: what is still on disk then
# is uploaded at the next start (recordings.recovery).
FINISH_ON_CLOSE_S = 5.0


class TooManyTracks(TooLarge):
    """A description that would take a member past MAX_PUBLISHED_TRACKS."""


TellVet = Callable[[UUID, str, dict[str, Any]], Awaitable[None]]  # consult, event, data


class SfuHost:
    """The embedded SFU: one connection per member, both ways (signals without `pc`)."""

    connections: Literal[1, 2] = 1
    records = True

    def __init__(
        self,
        redis: RedisClient,
        prefix: str,
        replica_id: str,
        deliver: Deliver,
        tell_vet: TellVet,
        studio: Studio | None = None,
    ) -> None:
        self._studio = studio  # None: no storage for recordings' media
        if studio is not None:
            studio.on_pressure(self._buffer_pressure)
        self._tell_vet = tell_vet
        self._recordings: dict[UUID, RoomRecording] = {}  # consult -> its live recording here
        self._tasks: set[asyncio.Task[None]] = set()
        self._replica_id = replica_id
        self._deliver = deliver
        self._rooms: dict[UUID, SfuRoom] = {}
        self._locks: defaultdict[tuple[UUID, UUID], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._record_locks: defaultdict[UUID, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._published: dict[tuple[UUID, UUID], frozenset[str]] = {}  # the mids sent on
        self.claims = SfuClaims(redis, prefix, replica_id)

    async def reclaim(self) -> None:
        """Claim again the rooms hosted here (after this replica's lease was reaped)."""
        for consult in list(self._rooms):
            if await self.claims.claim(consult) != self._replica_id:
                log.warning("sfu room %s was pinned elsewhere meanwhile; closing it", consult)
                room = self._rooms.pop(consult)
                await room.close()

    async def signal(
        self,
        consult: UUID,
        user: UUID,
        description: RTCSessionDescription | None,
        candidate: IceCandidateInit | None,
        pc: Pc | None = None,
        session: str | None = None,  # the embedded SFU tells connections apart by ICE ufrag
    ) -> None:
        """Apply a member's description or candidate to the consult's room (hosted here).
        Raises TooManyTracks, Invalid for a `pc`, and what SfuRoom raises:
        NegotiationConflict, KeyError, ValueError, and aiortc's errors for descriptions it
        cannot apply."""
        if pc is not None:
            raise Invalid("this media server takes one connection per member: send no `pc`")
        room = self._room(consult)
        member = (consult, user)
        async with self._locks[member]:
            if description is not None:
                published = self._published.get(member, frozenset())
                published |= sending_media(description.sdp)
                if len(published) > MAX_PUBLISHED_TRACKS:
                    raise TooManyTracks(f"a member publishes at most {MAX_PUBLISHED_TRACKS} tracks")
                if description.type == "offer":
                    answer = await room.handle_offer(str(user), description)
                    self._published[member] = published
                    await self._deliver(consult, user, "signal", from_media_server(consult, answer))
                else:
                    await room.handle_answer(str(user), description)
                    self._published[member] = published
            if candidate is not None:
                await room.add_ice_candidate(str(user), candidate)

    async def record(self, consult: UUID, recording_id: UUID, state: RecordingState) -> None:
        """Follow the consult's recording: tap its room's tracks while it records, write
        nothing while paused, and finish it (upload, join, manifest) once it stops."""
        async with self._record_locks[consult]:  # one take at a time, changes in order
            await self._record(consult, recording_id, state)

    async def _record(self, consult: UUID, recording_id: UUID, state: RecordingState) -> None:
        room = self._rooms.get(consult)
        current = self._recordings.get(consult)
        if current is not None and (current.recording_id != recording_id or not state.live):
            del self._recordings[consult]
            self._spawn(self._finish(current))
            current = None
        if room is None or not state.live:
            return
        if current is None:
            if self._studio is None:
                log.warning("recording %s: no S3 configured, its media is not kept", recording_id)
                return
            current = self._recordings[consult] = await self._studio.recording(recording_id)
            for participant in room.participant_ids:
                for source in room.publications(participant):
                    if isinstance(source, Publication):
                        current.tap(UUID(participant), source)
        if state is RecordingState.paused:
            current.pause()
        else:
            current.resume()

    def _buffer_pressure(self, pressure: BufferPressure) -> None:
        for consult, recording in self._recordings.items():
            storage = {
                "consult_id": str(consult),
                "recording_id": str(recording.recording_id),
                "near_full": pressure.near_full,
                "buffered_bytes": pressure.waiting_bytes,
                "limit_bytes": pressure.limit_bytes,
            }
            self._spawn(self._tell_vet(consult, "recording_storage", storage))

    def recorded_consults(self) -> list[UUID]:
        """The consults whose rooms this replica records now."""
        return list(self._recordings)

    async def index_interrupted(self, recording_id: UUID) -> None:
        """Write the manifest of a recording whose recorder died, listing what reached S3."""
        if self._studio is not None:
            await self._studio.index(recording_id)

    async def remove(self, consult: UUID, user: UUID) -> None:
        """Take a member out of the consult's room; close the room once it is empty."""
        room = self._rooms.get(consult)
        self._locks.pop((consult, user), None)
        self._published.pop((consult, user), None)
        if room is None:
            return
        await room.remove(str(user))
        if not room.participant_ids:
            del self._rooms[consult]
            if (recording := self._recordings.pop(consult, None)) is not None:
                self._spawn(self._finish(recording))
            await room.close()
            await self.claims.unpin(consult)

    async def abandoned(self, consult: UUID) -> None:
        """Nothing to clear: an embedded room dies with its replica."""

    async def close(self, closed: Closed) -> None:
        """Close the rooms hosted here and free their claims, calling `closed` with each
        consult at once; then give recordings FINISH_ON_CLOSE_S to reach S3."""
        rooms, self._rooms = list(self._rooms.items()), {}
        self._published.clear()
        for recording in self._recordings.values():
            self._spawn(self._finish(recording))
        self._recordings.clear()
        for consult, room in rooms:
            await room.close()
            with contextlib.suppress(Exception):  # Redis out: the claim lapses with the lease
                await self.claims.unpin(consult)
            with contextlib.suppress(Exception):
                await closed(consult)
        if self._tasks:
            _, unfinished = await asyncio.wait(self._tasks, timeout=FINISH_ON_CLOSE_S)
            for task in unfinished:  # S3 is out of reach: the next start uploads what is left
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)

    async def _finish(self, recording: RoomRecording) -> None:
        assert self._studio is not None
        try:
            await self._studio.finished(recording)
        except Exception:
            log.exception("recording %s could not be finished", recording.recording_id)

    async def _resume_recording(self, consult: UUID) -> None:
        """A room that starts here joins its consult's live recording, if there is one."""
        assert self._studio is not None
        live = await self._studio.live(consult)
        if live is not None:
            await self.record(consult, *live)

    def _published_track(self, consult: UUID, participant_id: str, source: Source) -> None:
        recording = self._recordings.get(consult)
        if recording is not None and isinstance(source, Publication):
            recording.tap(UUID(participant_id), source)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _room(self, consult: UUID) -> SfuRoom:
        room = self._rooms.get(consult)
        if room is None:

            async def offer(participant_id: str, description: RTCSessionDescription) -> None:
                user = UUID(participant_id)
                async with self._locks[(consult, user)]:
                    await self._deliver(
                        consult, user, "signal", from_media_server(consult, description)
                    )

            room = self._rooms[consult] = SfuRoom(
                offer, on_publish=lambda user, source: self._published_track(consult, user, source)
            )
            if self._studio is not None:
                self._spawn(self._resume_recording(consult))
        return room
