"""Routes a consult's SFU work to the replica hosting its room (signaling.media_host: the
embedded SFU or Janus): a member's `to: "sfu"` signals, and their removal when they leave or
rejoin on a new connection.

A signal refused by a room hosted here is refused in the member's ack; one refused by a room
on another replica comes back to them as `signal_failed {consult_id, to: "sfu", error}`
(`sfu_refusal` gives both their error).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

import aiohttp
from aiortc import RTCSessionDescription

from domain.errors import Invalid
from domain.recordings.lifecycle import RecordingState
from domain.scheduling.consults import ParticipantRole
from media.janus import JanusLost
from media.sdp_rules import IceCandidateInit
from media.sfu import NegotiationConflict, TooManyCandidates
from realtime.protocol import ErrorCode, EventError, refusal
from signaling.bus import ReplicaBus
from signaling.calls import Calls
from signaling.commands import SfuCommand, SfuRecord, SfuRemove, SfuSignal
from signaling.media_host import MediaHost, Pc
from signaling.modes import Mode


class SfuRouter:
    def __init__(self, calls: Calls, sfu: MediaHost, bus: ReplicaBus) -> None:
        self._calls = calls
        self._sfu = sfu
        self._bus = bus

    @property
    def connections(self) -> Literal[1, 2]:
        """How many connections a member opens to the media server (CONTRACT.md)."""
        return self._sfu.connections

    @property
    def records(self) -> bool:
        return self._sfu.records

    async def signal(
        self,
        consult_id: UUID,
        user_id: UUID,
        description: RTCSessionDescription | None,
        candidate: IceCandidateInit | None,
        pc: Pc | None = None,
        session: str | None = None,
    ) -> None:
        """Hand a member's signal to the consult's room, wherever it is hosted; raises the
        refusal (an EventError) of a room hosted here."""
        if await self._calls.current_mode(consult_id) is not Mode.sfu:
            raise Invalid("this call is not in sfu mode")
        command = SfuSignal(consult_id, user_id, description, candidate, pc, session)
        host = await self._sfu.claims.claim(consult_id)
        if host != self._bus.replica_id:
            await self._bus.send(host, command)
            return
        try:
            await self._apply(command)
        except Exception as error:
            raise sfu_refusal(error) from error

    async def remove(self, consult_id: UUID, user_id: UUID) -> None:
        host = await self._sfu.claims.host_of(consult_id)
        if host is not None:
            await self._bus.send(host, SfuRemove(consult_id, user_id))

    async def record(self, consult_id: UUID, recording_id: UUID, state: RecordingState) -> None:
        """Tell the replica hosting the consult's room, if any, that its recording changed."""
        host = await self._sfu.claims.host_of(consult_id)
        if host is not None:
            await self._bus.send(host, SfuRecord(consult_id, recording_id, state))

    async def run(self, command: SfuCommand) -> None:
        """A command sent by ReplicaBus.send (from this replica or another)."""
        if isinstance(command, SfuRemove):
            await self._sfu.remove(command.consult_id, command.user_id)
            return
        if isinstance(command, SfuRecord):
            await self._sfu.record(command.consult_id, command.recording_id, command.state)
            return
        try:
            await self._apply(command)
        except Exception as error:
            refused = sfu_refusal(error)
            failed = {"consult_id": str(command.consult_id), "to": "sfu", **refused.ack()}
            await self.deliver(command.consult_id, command.user_id, "signal_failed", failed)

    async def deliver(
        self, consult_id: UUID, user_id: UUID, name: str, data: dict[str, Any]
    ) -> None:
        """Send a member of the call an event from the media server, if they are still in."""
        member = await self._calls.member(consult_id, user_id)
        if member is not None:
            await self._bus.emit(member, name, data)

    async def tell_vet(self, consult_id: UUID, name: str, data: dict[str, Any]) -> None:
        """Send the call's vet an event from the media server, if they are in."""
        await self._tell(consult_id, name, data, vet_only=True)

    async def lost(self, consult_id: UUID) -> None:
        """The replica hosting the consult's room died: everyone in the call is told to
        connect to the media server anew (the next `to: "sfu"` offer pins the room on a live
        replica), before their connections to the dead one time out."""
        await self._tell(consult_id, "sfu_lost", {"consult_id": str(consult_id)})

    async def _tell(
        self, consult_id: UUID, name: str, data: dict[str, Any], *, vet_only: bool = False
    ) -> None:
        for member in (await self._calls.members(consult_id)).values():
            if member.admitted and (member.role is ParticipantRole.vet or not vet_only):
                await self._bus.emit(member, name, data)

    async def _apply(self, command: SfuSignal) -> None:
        await self._sfu.signal(
            command.consult_id,
            command.user_id,
            command.description,
            command.candidate,
            command.pc,
            command.session,
        )


def sfu_refusal(error: Exception) -> EventError:
    """The error ack for a signal the media server did not take (aiortc raises many kinds)."""
    if isinstance(error, KeyError):
        return EventError(ErrorCode.conflict, "send the media server an offer first")
    if isinstance(error, TooManyCandidates):
        return EventError(ErrorCode.too_large, str(error))
    if isinstance(error, NegotiationConflict):
        return EventError(ErrorCode.conflict, str(error))
    if isinstance(error, JanusLost | aiohttp.ClientError | TimeoutError):
        return EventError(ErrorCode.unavailable, "the media server is out of reach; try again")
    return refusal(error) or EventError(
        ErrorCode.invalid, f"the media server refused this: {error}"
    )
