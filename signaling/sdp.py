"""Checks on the session descriptions clients relay: small enough, and SDP that parses; and
what a description publishes."""

from __future__ import annotations

from aiortc.sdp import SessionDescription

from domain.errors import Invalid, TooLarge

MAX_SDP_BYTES = 64 * 1024


class SdpTooLarge(TooLarge):
    """An SDP over MAX_SDP_BYTES."""


class InvalidSdp(Invalid):
    """Text that is not a session description with media."""


def check_sdp(sdp: str) -> None:
    """Raise SdpTooLarge or InvalidSdp unless `sdp` is at most 64 KB, starts with `v=0`, has
    at least one `m=` line and parses with aiortc's SDP parser."""
    if len(sdp.encode()) > MAX_SDP_BYTES:
        raise SdpTooLarge(f"SDP is over {MAX_SDP_BYTES} bytes")
    lines = sdp.splitlines()
    if not lines or lines[0].strip() != "v=0":
        raise InvalidSdp("SDP must start with v=0")
    if not any(line.startswith("m=") for line in lines):
        raise InvalidSdp("SDP has no m= line")
    try:
        SessionDescription.parse(sdp)
    except Exception as error:  # the parser raises assertion, value and index errors
        raise InvalidSdp(f"SDP does not parse: {error!r}") from error


def sending_media(sdp: str) -> set[str]:
    """The mids (else `#<index>`) of the audio and video m-lines on which the author of `sdp`,
    a description `check_sdp` accepted, sends (an open port, `sendrecv` or `sendonly`)."""
    return {
        media.rtp.muxId or f"#{index}"
        for index, media in enumerate(SessionDescription.parse(sdp).media)
        if media.kind in ("audio", "video")
        and media.port != 0
        and media.direction in (None, "sendrecv", "sendonly")
    }
