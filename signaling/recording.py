"""`consent` and `record` on `/rtc`, and what people coming and going do to a recording.

- `consent {granted}`: appended to the consent ledger (with the client's IP and user agent);
  those in the call get `consent {consult_id, user_id, granted}`. Anyone holding a place in
  the call may consent, waiting in the lobby included, so they can be let in unpaused.
- `record start` (the vet): only when everyone in the call (admitted) has consented, else
  ConsentRequired naming who has not. A livekit call is recorded by LiveKit's egress
  (signaling.egress), when the hub has S3 to point it at (else Unavailable); so is one Janus
  serves (signaling.janus_host). Otherwise the hub
  records what passes through its SFU, so a p2p call first moves to sfu: those in it get
  `mode {consult_id, mode: "sfu"}` (before `recording`) and renegotiate with the SFU, whose
  room joins the live recording when it starts (signaling.sfu_host). `record stop` (the vet)
  stops it; the call stays in sfu.
- Someone admitted who has not consented, or a withdrawal, pauses a recording; once everyone
  in has consented (or those who had not left), it records again. The vet leaving stops it.

Each change is stored (domain.recordings), told to the replica hosting the consult's SFU room
(whose recorder follows it: signaling.sfu_host) and to those in the call as
`recording {consult_id, state, recording_id}`. A recording's row is locked while its state is
decided, so concurrent consents and departures settle it one at a time.
"""

from __future__ import annotations

from typing import Any, Literal, cast
from uuid import UUID

import asyncpg

from domain.audit import Actor
from domain.errors import Conflict, ConsentRequired, Forbidden, Unavailable
from domain.recordings import repository
from domain.recordings.consent import consenting, record_consent
from domain.recordings.lifecycle import RecordingState, settled
from domain.recordings.repository import Recording
from domain.scheduling.consults import ParticipantRole
from signaling.bus import ReplicaBus
from signaling.calls import Calls, Member
from signaling.egress import LiveKitRecorder
from signaling.modes import Mode, mode_for_recording
from signaling.sfu_router import SfuRouter


class RecordingControl:
    def __init__(
        self,
        pool: asyncpg.Pool,
        calls: Calls,
        bus: ReplicaBus,
        sfu: SfuRouter,
        livekit: LiveKitRecorder | None = None,
    ) -> None:
        self._pool = pool
        self._calls = calls
        self._bus = bus
        self._sfu = sfu
        self._livekit = livekit  # None: LiveKit calls are not recorded (no LiveKit, or no S3)

    async def consent(self, consult_id: UUID, actor: Actor, *, granted: bool) -> None:
        async with self._pool.acquire() as proxy, proxy.transaction():
            conn = cast(asyncpg.Connection, proxy)
            await record_consent(conn, consult_id, actor, granted=granted)
            reason = "consent granted" if granted else "consent withdrawn"
            changed = await self._settle(conn, consult_id, actor.user_id, reason)
        consent = {"consult_id": str(consult_id), "user_id": str(actor.user_id), "granted": granted}
        await self._tell(consult_id, "consent", consent, but=actor.user_id)
        await self._announce(changed)

    async def record(self, consult_id: UUID, vet: Member, action: Literal["start", "stop"]) -> UUID:
        """Start or stop the consult's recording; its id."""
        if vet.role is not ParticipantRole.vet:
            raise Forbidden("only the consult's vet records")
        async with self._pool.acquire() as proxy, proxy.transaction():
            conn = cast(asyncpg.Connection, proxy)
            current = await repository.live(conn, consult_id)
            if action == "start":
                if current is not None:
                    return current.id  # already live: starting again changes nothing
                await self._check_startable(conn, consult_id)
                recording = await repository.start(conn, consult_id, vet.user_id)
            else:
                if current is None:
                    raise Conflict("nothing is being recorded")
                recording = await repository.change_state(
                    conn, current, RecordingState.stopped, vet.user_id, "stopped by the vet"
                )
        if action == "start":
            await self._move_to_recordable_mode(consult_id)
        await self._announce(recording)
        return recording.id

    async def _move_to_recordable_mode(self, consult_id: UUID) -> None:
        """Move a p2p call to sfu, where its media reaches the recorder, and tell those in it.
        A join that read the old mode meanwhile reads it again (signaling.service)."""
        current = await self._calls.current_mode(consult_id)
        if current is None:
            return  # nobody is in the call any more
        recorded = mode_for_recording(current)
        if recorded is not current and await self._calls.switch_mode(consult_id, current, recorded):
            mode = {"consult_id": str(consult_id), "mode": recorded.value}
            await self._tell(consult_id, "mode", mode)

    async def present(self, consult_id: UUID, member: Member) -> None:
        """`member` is now in the call: pause a recording they have not consented to."""
        async with self._pool.acquire() as proxy, proxy.transaction():
            conn = cast(asyncpg.Connection, proxy)
            changed = await self._settle(conn, consult_id, member.user_id, "someone joined")
            # Unchanged, a live LiveKit recording still needs an egress for them (they had
            # consented); only a hub that records LiveKit calls looks it up on every join.
            unchanged = None
            if changed is None and self._livekit is not None:
                unchanged = await repository.live(conn, consult_id)
        await self._announce(changed)
        if unchanged is not None:
            await self._follow_in_livekit(unchanged)

    async def departed(self, consult_id: UUID, member: Member) -> None:
        """`member` left the call for good: the vet's departure stops a recording; anyone
        else's may let it resume."""
        async with self._pool.acquire() as proxy, proxy.transaction():
            conn = cast(asyncpg.Connection, proxy)
            if member.role is not ParticipantRole.vet:
                changed = await self._settle(conn, consult_id, member.user_id, "someone left")
            elif current := await repository.live(conn, consult_id):
                changed = await repository.change_state(
                    conn, current, RecordingState.stopped, member.user_id, "the vet left"
                )
            else:
                changed = None
        await self._announce(changed)

    async def interrupt(self, consult_id: UUID) -> UUID | None:
        """The replica hosting the consult's SFU room died: its live recording, if any, ends
        `interrupted` (final: what its recorder had not yet uploaded died with it). Its id."""
        async with self._pool.acquire() as proxy, proxy.transaction():
            conn = cast(asyncpg.Connection, proxy)
            current = await repository.live(conn, consult_id)
            if current is None:
                return None
            changed = await repository.change_state(
                conn, current, RecordingState.interrupted, None, "the hub recording it stopped"
            )
        await self._announce(changed)
        return changed.id

    async def _check_startable(self, conn: asyncpg.Connection, consult_id: UUID) -> None:
        livekit = await self._calls.current_mode(consult_id) is Mode.livekit
        if livekit and self._livekit is None:
            raise Unavailable("recording a LiveKit call needs S3 storage, which this hub lacks")
        if not livekit and not self._sfu.records:
            raise Unavailable("recording needs S3 storage for Janus's files, which this hub lacks")
        missing = await self._missing(conn, consult_id)
        if missing:
            names = ", ".join(member.name for member in missing)
            raise ConsentRequired(
                f"waiting for consent from {names}", [str(member.user_id) for member in missing]
            )

    async def _missing(self, conn: asyncpg.Connection, consult_id: UUID) -> list[Member]:
        """Those in the call who have not consented to recording."""
        present = [m for m in (await self._calls.members(consult_id)).values() if m.admitted]
        agreed = await consenting(conn, consult_id, [member.user_id for member in present])
        return [member for member in present if member.user_id not in agreed]

    async def _settle(
        self, conn: asyncpg.Connection, consult_id: UUID, actor_id: UUID, reason: str
    ) -> Recording | None:
        """Pause or resume the consult's live recording as consent now stands; the recording
        if its state changed."""
        current = await repository.live(conn, consult_id)
        if current is None:
            return None
        everyone_consents = not await self._missing(conn, consult_id)
        state = settled(current.state, everyone_consents=everyone_consents)
        if state is current.state:
            return None
        return await repository.change_state(conn, current, state, actor_id, reason)

    async def _announce(self, recording: Recording | None) -> None:
        if recording is not None:
            await self._sfu.record(recording.consult_id, recording.id, recording.state)
            await self._follow_in_livekit(recording)
            state = {
                "consult_id": str(recording.consult_id),
                "state": recording.state.value,
                "recording_id": str(recording.id),
            }
            await self._tell(recording.consult_id, "recording", state)

    async def _follow_in_livekit(self, recording: Recording) -> None:
        if (
            self._livekit is not None
            and await self._calls.current_mode(recording.consult_id) is Mode.livekit
        ):
            await self._livekit.follow(recording)

    async def _tell(
        self, consult_id: UUID, name: str, data: dict[str, Any], *, but: UUID | None = None
    ) -> None:
        for member in (await self._calls.members(consult_id)).values():
            if member.admitted and member.user_id != but:
                await self._bus.emit(member, name, data)
