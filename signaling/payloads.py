"""The payloads of the `/rtc` events (CONTRACT.md), as the namespace parses them."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from aiortc import RTCSessionDescription
from pydantic import Field

from media.sdp_rules import IceCandidateInit
from realtime.protocol import Payload

MAX_CANDIDATE_CHARS = 2048
MAX_REASON_CHARS = 500


class ConsultPayload(Payload):
    consult_id: UUID


class ConsentPayload(ConsultPayload):
    granted: bool


class RecordPayload(ConsultPayload):
    action: Literal["start", "stop"]


class MediaPayload(ConsultPayload):
    """Whether the caller's microphone (`audio`) and camera (`video`) are on."""

    audio: bool
    video: bool


class JoinPayload(ConsultPayload):
    mode: Literal["sfu"] | None = None


class AdmitPayload(ConsultPayload):
    user_id: UUID


class DenyPayload(AdmitPayload):
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)


class Description(Payload):
    type: Literal["offer", "answer"]
    sdp: str

    def session(self) -> RTCSessionDescription:
        return RTCSessionDescription(self.sdp, self.type)


class IceCandidate(Payload):
    """A trickled candidate (`RTCIceCandidateInit`); an empty `candidate` ends them."""

    candidate: str = Field(max_length=MAX_CANDIDATE_CHARS)
    sdpMid: str | None = Field(default=None, max_length=64)  # the browser's names
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=1024)

    def init(self) -> IceCandidateInit:
        return {
            "candidate": self.candidate,
            "sdpMid": self.sdpMid,
            "sdpMLineIndex": self.sdpMLineIndex,
        }


# A client's name for one of its peer connections: signals carry the sender's (`session`) and the
# one they answer (`to_session`), so a peer that replaced its connection is told from a stale one.
SessionId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class SignalPayload(ConsultPayload):
    to: Literal["sfu"] | UUID
    description: Description | None = None
    candidate: IceCandidate | None = None
    session: SessionId | None = None
    to_session: SessionId | None = None
    pc: Literal["publish", "subscribe"] | None = None  # with `to: "sfu"` (signaling.media_host)


class StatsPayload(ConsultPayload):
    """A client's measures of its call: round-trip time, packet loss as a fraction (lost over
    sent, 0-1) and jitter."""

    rtt_ms: float = Field(ge=0, le=600_000)
    packet_loss: float = Field(ge=0, le=1)
    jitter_ms: float = Field(ge=0, le=600_000)
