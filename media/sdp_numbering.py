"""The room's offers in each participant's own numbering of codecs and RTP header extensions.

aiortc numbers every offer from its own tables (createOffer resets each transceiver's codecs
and header extensions), even the m-lines a participant already negotiated with other numbers.
Browsers number differently (Chrome: VP8 96, Opus 111, `sdes:mid` 4, ...) and refuse such a
re-offer ("RTP extension ID reassignment not supported"); within a BUNDLE group they also want
one meaning per payload type and per extension id across m-lines. So the room rewrites its
offers in the numbering of the participant's last description: each codec takes the payload
type the participant gives it (an RTX codec, the one whose `apt` is its base's), each header
extension the participant's id. A codec the participant does not have keeps its payload type
unless the participant uses that one (then it takes a free one); an extension the participant
does not know is left out. The participant's answer then names the same numbers, which aiortc
adopts for the transceivers when it applies it.
"""

from __future__ import annotations

from aiortc import RTCSessionDescription, sdp
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import DYNAMIC_PAYLOAD_TYPES

CodecKey = tuple[str, int, int | None]  # mime type (lower case), clock rate, channels


def _key(codec: RTCRtpCodecParameters) -> CodecKey:
    return codec.mimeType.lower(), codec.clockRate, codec.channels


def _numbered(media: sdp.MediaDescription) -> list[tuple[RTCRtpCodecParameters, int]]:
    """The m-line's codecs with their payload types (every codec parsed from SDP has one)."""
    return [(c, c.payloadType) for c in media.rtp.codecs if c.payloadType is not None]


class _Numbering:
    """A participant's payload types and header extension ids, read off its description."""

    def __init__(self, description: sdp.SessionDescription) -> None:
        self.payload_types: dict[CodecKey, int] = {}
        self.rtx: dict[int, int] = {}  # base payload type -> its RTX payload type
        self.extension_ids: dict[str, int] = {}
        self.used: set[int] = set()
        for media in description.media:
            for codec, number in _numbered(media):
                self.used.add(number)
                apt = codec.parameters.get("apt")
                if not is_rtx(codec):
                    self.payload_types.setdefault(_key(codec), number)
                elif isinstance(apt, int):
                    self.rtx.setdefault(apt, number)
            for extension in media.rtp.headerExtensions:
                self.extension_ids.setdefault(extension.uri, extension.id)

    def payload_type(self, codec: RTCRtpCodecParameters, number: int, base: int | None) -> int:
        """The participant's payload type for `codec`, numbered `number` in the room's offer
        (an RTX codec's, given its `base`)."""
        own = self.rtx.get(base) if base is not None else self.payload_types.get(_key(codec))
        if own is not None:
            return own
        if number in self.used:
            number = next(free for free in DYNAMIC_PAYLOAD_TYPES if free not in self.used)
        self.used.add(number)
        if base is not None:  # the same number for the codec in the offer's other m-lines
            self.rtx[base] = number
        else:
            self.payload_types[_key(codec)] = number
        return number


def in_their_numbering(
    offer: RTCSessionDescription, theirs: RTCSessionDescription
) -> RTCSessionDescription:
    """`offer`, renumbered as the participant's description `theirs` numbers things."""
    numbering = _Numbering(sdp.SessionDescription.parse(theirs.sdp))
    description = sdp.SessionDescription.parse(offer.sdp)
    for media in description.media:
        if media.kind not in ("audio", "video"):
            continue
        codecs = _numbered(media)
        renumbered: dict[int, int] = {}
        for codec, number in codecs:  # base codecs first: an RTX codec follows its base's
            if not is_rtx(codec):
                renumbered[number] = numbering.payload_type(codec, number, None)
        for codec, number in codecs:
            apt = codec.parameters.get("apt")
            if is_rtx(codec) and isinstance(apt, int) and apt in renumbered:
                codec.parameters["apt"] = renumbered[apt]
                renumbered[number] = numbering.payload_type(codec, number, renumbered[apt])
        for codec, number in codecs:
            codec.payloadType = renumbered.get(number, number)
        media.fmt = [codec.payloadType for codec in media.rtp.codecs]
        extensions = [e for e in media.rtp.headerExtensions if e.uri in numbering.extension_ids]
        for extension in extensions:
            extension.id = numbering.extension_ids[extension.uri]
        media.rtp.headerExtensions = extensions
    return RTCSessionDescription(str(description), offer.type)
