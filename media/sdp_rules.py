"""What the embedded SFU (media.sfu) asks of every description: its one codec per kind,
a video bitrate cap in its answers, and trickled candidates parsed as browsers send them."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from aiortc import (
    RTCIceCandidate,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import OperationError
from aiortc.sdp import candidate_from_sdp

from media import _aiortc

MAX_VIDEO_KBPS = 1500  # 640x480 at 30 fps looks good at 1 Mb/s; 720p needs about 1.5
CODECS = {"video": "video/VP8", "audio": "audio/opus"}


class IceCandidateInit(TypedDict):
    """A trickled candidate as browsers send it (`RTCIceCandidateInit`)."""

    candidate: str
    sdpMid: NotRequired[str | None]
    sdpMLineIndex: NotRequired[int | None]


def capabilities(kind: str) -> list[RTCRtpCodecCapability]:
    """The room's one codec for `kind`, and its retransmission."""
    wanted = {CODECS[kind].lower(), f"{kind}/rtx"}
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    return [codec for codec in codecs if codec.mimeType.lower() in wanted]


def forward_as_is(pc: RTCPeerConnection) -> None:
    """Narrow every m-line of the offer just applied, and of the room's later offers, to the
    codec the room forwards."""
    for transceiver in pc.getTransceivers():
        codec = CODECS.get(transceiver.kind)
        if codec is None:
            continue
        if not _aiortc.keep_codecs(transceiver, codec):
            raise OperationError(f"the media server forwards only {codec}")
        transceiver.setCodecPreferences(capabilities(transceiver.kind))


def cap_video(sdp: str) -> str:
    """Add `b=AS:MAX_VIDEO_KBPS` to each video section of `sdp` (after its `c=` line)."""
    lines: list[str] = []
    in_video = False
    for line in sdp.splitlines():
        lines.append(line)
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video and line.startswith("c="):
            lines.append(f"b=AS:{MAX_VIDEO_KBPS}")
    return "\r\n".join(lines) + "\r\n"


def parse_candidate(candidate: IceCandidateInit | None) -> RTCIceCandidate | None:
    if candidate is None or not candidate["candidate"]:
        return None
    line = candidate["candidate"].removeprefix("candidate:")
    ice_candidate: RTCIceCandidate = candidate_from_sdp(line)
    ice_candidate.sdpMid = candidate.get("sdpMid")
    ice_candidate.sdpMLineIndex = candidate.get("sdpMLineIndex")
    if ice_candidate.sdpMid is None and ice_candidate.sdpMLineIndex is None:
        raise ValueError("a candidate needs sdpMid or sdpMLineIndex")
    return ice_candidate


def new_connection(current: RTCSessionDescription | None, offer: RTCSessionDescription) -> bool:
    """Whether `offer` comes from another connection than the one `current` described: its
    ICE username fragment differs (aiortc cannot restart ICE on an existing connection)."""
    return current is not None and _ice_ufrag(current.sdp) != _ice_ufrag(offer.sdp)


def _ice_ufrag(sdp: str) -> str | None:
    prefix = "a=ice-ufrag:"
    lines = (line for line in sdp.splitlines() if line.startswith(prefix))
    return next((line[len(prefix) :].strip() for line in lines), None)
