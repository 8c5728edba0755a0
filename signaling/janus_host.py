"""The `sfu` consults pinned to this replica, served by Janus's VideoRoom (`JANUS_URL`).

As with the embedded SFU, the replica that claimed a consult (signaling.sfu_claims) hosts its
room, a VideoRoom on this replica's Janus session (media.janus); each member opens two
connections to it (signaling.janus_consult): `publish`, with its tracks, and `subscribe`.

Nobody reaches a room without the hub: it is private, its tokens are issued here to the members
the hub let in, and its secret is derived from the consult and the hub's secret, so whichever
replica hosts the consult next can destroy a room a dead replica left behind.

Changes to a consult's room happen one at a time (a lock per consult). When the Janus session
is lost (Janus restarted, the socket dropped, a keepalive failed) the rooms on it are gone:
their claims are freed and their members told `sfu_lost`; the next offer opens a new session.

A live recording of a consult hosted here is a take Janus records (recordings.janus_take);
the take ends, and goes to S3, when the recording stops or the room goes (emptied, Janus lost,
this replica stopping: then within FINISH_ON_CLOSE_S).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections import defaultdict
from collections.abc import Awaitable
from pathlib import Path
from typing import Literal
from uuid import UUID

import aiohttp
from aiortc import RTCSessionDescription

from domain.errors import Invalid, Unavailable
from domain.recordings.lifecycle import RecordingState
from domain.redis_client import RedisClient
from media.janus import JanusAccess, JanusError, JanusHandle, JanusSession
from media.janus_room import JanusRoom
from media.sdp_rules import IceCandidateInit
from recordings.janus_take import JanusTake
from recordings.studio import Studio
from recordings.uploads import RecordingUploads
from signaling.janus_consult import JanusConsult
from signaling.lobby import MAX_INVITEES_IN_CALL
from signaling.media_host import Closed, Deliver, Pc
from signaling.sfu_claims import SfuClaims
from signaling.sfu_host import FINISH_ON_CLOSE_S

log = logging.getLogger(__name__)

MAX_PUBLISHERS = 2 + MAX_INVITEES_IN_CALL  # the vet, the owner and their invitees
NO_SUCH_ROOM = 426  # the VideoRoom plugin's JANUS_VIDEOROOM_ERROR_NO_SUCH_ROOM
CONNECT_TIMEOUT_S = 5.0


class JanusHost:
    """Janus's VideoRoom: two connections per member (signals with `pc`)."""

    connections: Literal[1, 2] = 2

    def __init__(
        self,
        redis: RedisClient,
        prefix: str,
        replica_id: str,
        deliver: Deliver,
        lost: Closed,
        janus: JanusAccess,
        secret: str,
        studio: Studio | None = None,
    ) -> None:
        self.claims = SfuClaims(redis, prefix, replica_id)
        self.records = studio is not None  # without S3, nothing would keep Janus's files
        self._studio = studio
        self._recordings: dict[UUID, JanusTake] = {}  # consult -> its live take here
        self._finishing: set[asyncio.Task[None]] = set()
        self._replica_id = replica_id
        self._deliver = deliver
        self._lost = lost
        self._janus = janus
        self._secret = secret.encode()
        self._http: aiohttp.ClientSession | None = None
        self._session: JanusSession | None = None
        self._control: JanusHandle | None = None
        self._connecting = asyncio.Lock()
        self._rooms: dict[UUID, JanusConsult] = {}
        self._locks: defaultdict[UUID, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def signal(
        self,
        consult: UUID,
        user: UUID,
        description: RTCSessionDescription | None,
        candidate: IceCandidateInit | None,
        pc: Pc | None,
        session: str | None,
    ) -> None:
        """Apply a member's description or candidate to one of its connections to the room.
        Raises Invalid, Conflict, KeyError (a candidate before its connection's offer),
        JanusLost or aiohttp's errors (Janus out of reach) and JanusError (Janus refused)."""
        if pc is None:
            raise Invalid("this media server takes two connections per member: send `pc`")
        async with self._locks[consult]:
            room = self._rooms.get(consult)
            if room is None:
                if await self.claims.host_of(consult) != self._replica_id:
                    raise Unavailable("the consult's media server moved; send that again")
                room = await self._open(consult)
            try:
                await room.signal(user, description, candidate, pc, session)
            except JanusError as error:
                if error.code != NO_SUCH_ROOM:
                    raise
                await self._drop(room, destroy=False)  # gone from Janus: start over elsewhere
                self._spawn(self._lost(consult))
                raise Unavailable("the media server lost the consult's room") from error

    async def remove(self, consult: UUID, user: UUID) -> None:
        """Take a member out of the room; destroy the room once it is empty."""
        async with self._locks[consult]:
            room = self._rooms.get(consult)
            if room is not None and await room.remove(user):
                await self._drop(room, destroy=True)

    async def record(self, consult: UUID, recording_id: UUID, state: RecordingState) -> None:
        """Follow the consult's recording: Janus records its room while it records, nothing
        while paused, and the take is finished once it stops."""
        async with self._locks[consult]:
            await self._record(consult, recording_id, state)

    async def _record(self, consult: UUID, recording_id: UUID, state: RecordingState) -> None:
        room, current = self._rooms.get(consult), self._recordings.get(consult)
        if current is not None and (current.recording_id != recording_id or not state.live):
            await self._end_take(consult)
            current = None
        if room is None or not state.live or self._studio is None:
            return
        if current is None:
            janus = room.room

            def janus_take(
                recording: UUID, take: int, directory: Path, _: object, uploads: RecordingUploads
            ) -> JanusTake:  # Janus writes the files: the hub's segment buffer is not used
                return JanusTake(janus, recording, take, directory, uploads)

            current = self._recordings[consult] = await self._studio.take(recording_id, janus_take)
        if state is RecordingState.paused:
            await current.pause()
        else:
            await current.resume()

    def recorded_consults(self) -> list[UUID]:
        return list(self._recordings)

    async def index_interrupted(self, recording_id: UUID) -> None:
        if self._studio is not None:
            await self._studio.index(recording_id)

    async def reclaim(self) -> None:
        """Claim again the rooms hosted here (after this replica's lease was reaped)."""
        for consult in list(self._rooms):
            if await self.claims.claim(consult) != self._replica_id:
                # Not destroyed: its id is the consult's, and the new host replaces it (or has).
                log.warning("janus room %s was pinned elsewhere meanwhile; leaving it", consult)
                async with self._locks[consult]:
                    if (room := self._rooms.get(consult)) is not None:
                        await self._drop(room, destroy=False)
                        self._spawn(self._lost(consult))

    async def abandoned(self, consult: UUID) -> None:
        """Destroy the room a dead replica left in Janus, unless the consult is hosted again
        (its new host replaced the room): this replica claims the consult while it does."""
        async with self._locks[consult]:
            if consult in self._rooms or await self.claims.claim(consult) != self._replica_id:
                return
            try:
                _, control = await self._session_now()
                with contextlib.suppress(JanusError):  # no such room: it went with Janus
                    await self._janus_room(control, consult).destroy()
            finally:
                await self.claims.unpin(consult)

    async def close(self, closed: Closed) -> None:
        """Destroy the rooms hosted here, free their claims and call `closed` with each; then
        give recordings FINISH_ON_CLOSE_S to reach S3."""
        self._closing = True
        for consult in list(self._rooms):
            async with self._locks[consult]:
                if (room := self._rooms.get(consult)) is None:
                    continue  # emptied or lost meanwhile
                await self._drop(room, destroy=True)
            with contextlib.suppress(Exception):
                await closed(consult)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._finishing:
            _, unfinished = await asyncio.wait(self._finishing, timeout=FINISH_ON_CLOSE_S)
            for task in unfinished:  # Janus's files stay on disk, not recovered (README)
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._http is not None:
            await self._http.close()

    async def _open(self, consult: UUID) -> JanusConsult:
        session, control = await self._session_now()
        janus = self._janus_room(control, consult)
        await janus.replace([], MAX_PUBLISHERS)  # an empty `allowed`: only tokens given later
        room = JanusConsult(
            consult, session, janus, self._locks[consult], self._deliver, self._spawn
        )
        self._rooms[consult] = room
        if self._studio is not None and (live := await self._studio.live(consult)) is not None:
            await self._record(consult, *live)  # a recording that began before this room
        return room

    def _janus_room(self, control: JanusHandle, consult: UUID) -> JanusRoom:
        secret = hmac.new(self._secret, consult.bytes, hashlib.sha256).hexdigest()
        return JanusRoom(control, str(consult), secret, self._janus.admin_key)

    async def _drop(self, room: JanusConsult, *, destroy: bool) -> None:
        """Forget a room hosted here (under its lock): its take ends, its handles are
        detached, and with `destroy` Janus destroys it; its claim is freed."""
        del self._rooms[room.consult]
        room.closed = True
        await self._end_take(room.consult)
        with contextlib.suppress(Exception):  # a lost session took the room with it
            await room.detach_all()
            if destroy:
                await room.room.destroy()
        with contextlib.suppress(Exception):  # Redis out: the claim lapses with the lease
            await self.claims.unpin(room.consult)

    async def _session_now(self) -> tuple[JanusSession, JanusHandle]:
        """The Janus session, opened anew if there is none or it was lost, and its handle for
        creating and destroying rooms."""
        async with self._connecting:
            if self._session is None or self._session.lost.is_set():
                if self._session is not None:
                    await self._session.close()  # its socket, if Janus only timed it out
                if self._http is None:
                    self._http = aiohttp.ClientSession()
                connecting = JanusSession.connect(
                    self._http, self._janus.url, self._janus.api_secret
                )
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    session = await connecting
                try:
                    self._control = await session.attach()
                except BaseException:
                    await session.close()
                    raise
                self._session = session
                self._spawn(self._forget_rooms_when_lost(session))
            assert self._control is not None
            return self._session, self._control

    async def _forget_rooms_when_lost(self, session: JanusSession) -> None:
        await session.lost.wait()
        if self._closing:
            return
        log.warning("the Janus session is lost; its rooms' members renegotiate")
        for consult, room in list(self._rooms.items()):
            if room.session is not session:
                continue
            async with self._locks[consult]:
                if self._rooms.get(consult) is room:
                    await self._drop(room, destroy=False)  # its take keeps what Janus wrote
            with contextlib.suppress(Exception):
                await self._lost(consult)

    async def _end_take(self, consult: UUID) -> None:
        """End the consult's take, if any (under the consult's lock): Janus stops writing now,
        while the room is sure to be there; converting and uploading go on in the background."""
        take = self._recordings.pop(consult, None)
        if take is None:
            return
        await take.halt()

        async def finish() -> None:
            assert self._studio is not None
            try:
                await self._studio.finished(take)
            except Exception:
                log.exception("recording %s could not be finished", take.recording_id)

        task = asyncio.ensure_future(finish())
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
