"""Who else is in a consult's call, and what they are told as people come and go: events reach
each member through the replica bus, on whichever replica serves them.

- A member who is in: the others who are in get `peer_joined {consult_id, user_id, role}`
  (`rejoined: true` for a new connection of someone who was in, so they renegotiate).
- A member who waits: the vet gets `lobby {consult_id, user_id, name}`.
- A member who comes in gets `media {consult_id, user_id, audio, video}` for each one in whose
  microphone or camera is off (the others heard it when it happened).
- A member who leaves for good: `peer_left {consult_id, user_id}` to those in, or `lobby_left`
  to the vet for someone who was waiting; the media server lets them go, and a call nobody is
  in any more ends (its mode is forgotten).

A recording (signaling.recording) hears of each member who comes in or leaves for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from domain.scheduling.consults import ParticipantRole
from signaling.bus import ReplicaBus
from signaling.calls import Calls, Member
from signaling.recording import RecordingControl
from signaling.sfu_router import SfuRouter


class Roster:
    def __init__(
        self, calls: Calls, bus: ReplicaBus, sfu: SfuRouter, recording: RecordingControl
    ) -> None:
        self._calls = calls
        self._bus = bus
        self._sfu = sfu
        self._recording = recording

    async def others(self, consult_id: UUID, member: Member) -> list[Member]:
        members = await self._calls.members(consult_id)
        return [other for user, other in members.items() if user != member.user_id]

    async def tell(self, members: Sequence[Member], name: str, data: dict[str, Any]) -> None:
        for member in members:
            await self._bus.emit(member, name, data)

    async def announce(
        self, consult_id: UUID, member: Member, others: list[Member], *, rejoined: bool
    ) -> None:
        """`peer_joined` to those in the call for a member who is in, else `lobby` to the vet."""
        if member.admitted:
            joined: dict[str, Any] = {"consult_id": str(consult_id), **member.peer()}
            if rejoined:
                joined["rejoined"] = True
            await self.tell(admitted(others), "peer_joined", joined)
            await self._recording.present(consult_id, member)
        else:
            await self.tell(vets(others), "lobby", lobby_entry(consult_id, member))

    async def show_media(self, consult_id: UUID, member: Member, others: list[Member]) -> None:
        """Tell `member`, just in, whose microphone or camera is off among those in."""
        for other in admitted(others):
            if not (other.audio and other.video):
                await self._bus.emit(member, "media", other.media(consult_id))

    async def depart(self, consult_id: UUID, member: Member) -> None:
        """Tell the others that `member` has left the call for good, and tidy up after it."""
        others = list((await self._calls.members(consult_id)).values())
        left = {"consult_id": str(consult_id), "user_id": str(member.user_id)}
        if member.admitted:
            await self.tell(admitted(others), "peer_left", left)
        else:
            await self.tell(vets(others), "lobby_left", left)
        await self._sfu.remove(consult_id, member.user_id)
        if member.admitted:
            await self._recording.departed(consult_id, member)
        await self._calls.end_if_empty(consult_id)


def admitted(members: Sequence[Member]) -> list[Member]:
    return [member for member in members if member.admitted]


def vets(members: Sequence[Member]) -> list[Member]:
    return [member for member in members if member.role is ParticipantRole.vet]


def lobby_entry(consult_id: UUID, member: Member) -> dict[str, str]:
    return {"consult_id": str(consult_id), "user_id": str(member.user_id), "name": member.name}
