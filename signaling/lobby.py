"""The lobby: everyone but the consult's vet waits in it (`waiting: true`, no peers) until the
vet admits or denies them.

- `admit`: the person gets `admitted {consult_id, peers, mode, polite, livekit?}` and those in
  the call `peer_joined`. A third person in a p2p call (invited after it began) moves it to
  sfu: those already in get `mode {consult_id, mode: "sfu"}` first.
- `deny`: the person gets `denied {consult_id, reason}` and leaves the lobby (the vet gets
  `lobby_left`); they may join again later, and wait again.

At most MAX_INVITEES_IN_CALL invitees are in a call at once, waiting or in (else `conflict`):
with the vet and the owner, a call of 8 at most.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.errors import Conflict, Forbidden, NotFound
from domain.scheduling.consults import ParticipantRole
from integrations.livekit import LiveKitBridge, LiveKitJoin
from signaling.bus import ReplicaBus
from signaling.calls import Calls, Member
from signaling.modes import P2P_MAX_PARTICIPANTS, Mode, is_polite
from signaling.roster import Roster, admitted

MAX_INVITEES_IN_CALL = 6


class Lobby:
    def __init__(
        self, calls: Calls, bus: ReplicaBus, roster: Roster, livekit: LiveKitBridge | None
    ) -> None:
        self._calls = calls
        self._bus = bus
        self._roster = roster
        self._livekit = livekit

    async def check_room_for_invitee(self, consult_id: UUID) -> None:
        members = await self._calls.members(consult_id)
        invitees = sum(member.role is ParticipantRole.invited for member in members.values())
        if invitees >= MAX_INVITEES_IN_CALL:
            raise Conflict(f"the call already has {MAX_INVITEES_IN_CALL} invitees")

    async def admit(self, consult_id: UUID, vet: Member, user_id: UUID) -> None:
        person = await self._waiting(consult_id, vet, user_id, "admits", admitted_ok=True)
        if person.admitted:
            return
        mode = await self._calls.current_mode(consult_id) or Mode.p2p
        person = person.model_copy(update={"admitted": True})
        livekit = await self.livekit_join(mode, consult_id, person)
        await self._calls.put(consult_id, person)
        # A recording may have moved the call to sfu while they were not yet in (the `mode` event
        # went to those in before them): the mode as it stands now that they are in.
        mode = await self._calls.current_mode(consult_id) or mode
        others = await self._roster.others(consult_id, person)
        if mode is Mode.p2p and len(admitted(others)) >= P2P_MAX_PARTICIPANTS:
            mode = await self._grow_to_sfu(consult_id, admitted(others))
        welcome: dict[str, Any] = {
            "consult_id": str(consult_id),
            "peers": [m.peer() for m in admitted(others)],
            "mode": mode.value,
            "polite": is_polite(mode, person.role),
        }
        if livekit is not None:
            welcome["livekit"] = livekit
        await self._bus.emit(person, "admitted", welcome)
        await self._roster.show_media(consult_id, person, others)
        await self._roster.announce(consult_id, person, others, rejoined=False)

    async def _grow_to_sfu(self, consult_id: UUID, those_in: list[Member]) -> Mode:
        """A third person in a p2p call (someone invited after it began): it moves to sfu, and
        those already in are told to renegotiate with the room."""
        if await self._calls.switch_mode(consult_id, Mode.p2p, Mode.sfu):
            moved = {"consult_id": str(consult_id), "mode": Mode.sfu.value}
            await self._roster.tell(those_in, "mode", moved)
        return await self._calls.current_mode(consult_id) or Mode.sfu

    async def deny(self, consult_id: UUID, vet: Member, user_id: UUID, reason: str | None) -> None:
        person = await self._waiting(consult_id, vet, user_id, "denies", admitted_ok=False)
        removed = await self._calls.remove(consult_id, person.user_id)
        if removed is None:
            raise NotFound("nobody by that id is waiting")  # they left meanwhile
        await self._bus.emit(removed, "denied", {"consult_id": str(consult_id), "reason": reason})
        await self._roster.depart(consult_id, removed)

    async def livekit_join(
        self, mode: Mode, consult_id: UUID, member: Member
    ) -> LiveKitJoin | None:
        """The `livekit` field for an admitted member of a livekit-mode call (vets: admin)."""
        if mode is not Mode.livekit or self._livekit is None:
            return None
        return await self._livekit.join(
            str(consult_id),
            str(member.user_id),
            name=member.name,
            admin=member.role is ParticipantRole.vet,
        )

    async def _waiting(
        self, consult_id: UUID, vet: Member, user_id: UUID, verb: str, *, admitted_ok: bool
    ) -> Member:
        """The person the vet `vet` admits or denies; NotFound unless they wait (or are in,
        when `admitted_ok`)."""
        if vet.role is not ParticipantRole.vet:
            raise Forbidden(f"only the consult's vet {verb}")
        person = await self._calls.member(consult_id, user_id)
        if person is None or (person.admitted and not admitted_ok):
            raise NotFound("nobody by that id is waiting")
        return person
