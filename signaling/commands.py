"""The SFU's work, sent to the replica hosting a consult's room (signaling.bus.ReplicaBus.send):
typed commands, encoded as JSON objects for the Redis hop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aiortc import RTCSessionDescription

from domain.recordings.lifecycle import RecordingState
from media.sdp_rules import IceCandidateInit
from signaling.media_host import Pc


@dataclass(frozen=True)
class SfuSignal:
    """A member's description and/or trickled candidate for the consult's room."""

    consult_id: UUID
    user_id: UUID
    description: RTCSessionDescription | None
    candidate: IceCandidateInit | None
    pc: Pc | None = None
    session: str | None = None  # the client's name for the connection (`session`)

    def encode(self) -> dict[str, Any]:
        description = self.description
        return {
            "op": "sfu_signal",
            "consult_id": str(self.consult_id),
            "user_id": str(self.user_id),
            "description": {"type": description.type, "sdp": description.sdp}
            if description is not None
            else None,
            "candidate": self.candidate,
            "pc": self.pc,
            "session": self.session,
        }


@dataclass(frozen=True)
class SfuRemove:
    """Take a member out of the consult's room (they left, or rejoined on a new connection)."""

    consult_id: UUID
    user_id: UUID

    def encode(self) -> dict[str, Any]:
        return {
            "op": "sfu_remove",
            "consult_id": str(self.consult_id),
            "user_id": str(self.user_id),
        }


@dataclass(frozen=True)
class SfuRecord:
    """The consult's recording changed state: the room's recorder follows."""

    consult_id: UUID
    recording_id: UUID
    state: RecordingState

    def encode(self) -> dict[str, Any]:
        return {
            "op": "sfu_record",
            "consult_id": str(self.consult_id),
            "recording_id": str(self.recording_id),
            "state": self.state.value,
        }


SfuCommand = SfuSignal | SfuRemove | SfuRecord


def decode(encoded: dict[str, Any]) -> SfuCommand:
    """The command `encode` gave `encoded`; KeyError or ValueError for anything else."""
    if encoded["op"] == "sfu_record":
        return SfuRecord(
            UUID(encoded["consult_id"]),
            UUID(encoded["recording_id"]),
            RecordingState(encoded["state"]),
        )
    consult_id, user_id = UUID(encoded["consult_id"]), UUID(encoded["user_id"])
    if encoded["op"] == "sfu_remove":
        return SfuRemove(consult_id, user_id)
    if encoded["op"] != "sfu_signal":
        raise ValueError(f"unknown sfu command {encoded['op']!r}")
    described = encoded["description"]
    return SfuSignal(
        consult_id,
        user_id,
        RTCSessionDescription(described["sdp"], described["type"]) if described else None,
        encoded["candidate"],
        encoded.get("pc"),
        encoded.get("session"),
    )
