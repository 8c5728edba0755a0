"""The room's offers in each participant's own numbering (media.sdp_numbering): a participant
that numbers codecs and header extensions as Chrome does gets every room offer in its numbers
and still receives the others' media; codecs and extensions it lacks are renumbered or left
out without a clash."""

from __future__ import annotations

import pytest
from aiortc import AudioStreamTrack, RTCPeerConnection, RTCSessionDescription, sdp
from aiortc.codecs import is_rtx

from media.sdp_numbering import in_their_numbering
from media.sdp_rules import capabilities
from media.sfu import SfuRoom
from tests.media.test_sfu import Client
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("loopback_ice")

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
CHROME_PAYLOAD_TYPES = {"audio/opus": 111, "video/vp8": 96, "video/rtx": 97}
CHROME_EXTENSION_IDS = {AUDIO_LEVEL: 1, SEND_TIME: 2, MID: 4}


def renumbered(
    description: RTCSessionDescription, payload_types: dict[str, int], ids: dict[str, int]
) -> RTCSessionDescription:
    """`description` with other numbers for the codecs and extensions the maps name (RTX by
    its own mime type); the other codecs and extensions are left out."""
    parsed = sdp.SessionDescription.parse(description.sdp)
    for media in parsed.media:
        kept = [c for c in media.rtp.codecs if c.mimeType.lower() in payload_types]
        base = next(c for c in kept if not is_rtx(c))
        for codec in kept:
            codec.payloadType = payload_types[codec.mimeType.lower()]
            if is_rtx(codec):
                codec.parameters["apt"] = payload_types[base.mimeType.lower()]
        media.rtp.codecs, media.fmt = kept, [codec.payloadType for codec in kept]
        media.rtp.headerExtensions = [e for e in media.rtp.headerExtensions if e.uri in ids]
        for extension in media.rtp.headerExtensions:
            extension.id = ids[extension.uri]
    return RTCSessionDescription(str(parsed), description.type)


def numbers(
    description: RTCSessionDescription,
) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    """The (mime type, payload type) and (extension uri, id) pairs `description` uses."""
    parsed = sdp.SessionDescription.parse(description.sdp)
    codecs = {(c.mimeType.lower(), c.payloadType or 0) for m in parsed.media for c in m.rtp.codecs}
    extensions = {(e.uri, e.id) for m in parsed.media for e in m.rtp.headerExtensions}
    return codecs, extensions


class ChromeNumbered(Client):
    """A participant that numbers its offers as Chrome does."""

    async def join(self) -> RTCSessionDescription:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = renumbered(self.pc.localDescription, CHROME_PAYLOAD_TYPES, CHROME_EXTENSION_IDS)
        answer = await self.room.handle_offer(self.name, offer)
        await self.pc.setRemoteDescription(answer)
        return answer


async def test_a_participant_gets_the_room_s_offers_in_its_own_numbers() -> None:
    clients: dict[str, Client] = {}

    async def send_offer(participant_id: str, offer: RTCSessionDescription) -> None:
        await clients[participant_id].answer_room_offer(offer)

    room = SfuRoom(send_offer)
    clients.update(
        vet=ChromeNumbered("vet", room, audio=True), owner=Client("owner", room, audio=True)
    )
    try:
        for client in clients.values():
            await client.join()
        await eventually(
            lambda: clients["vet"].frames["owner"] >= 30 and clients["owner"].frames["vet"] >= 30,
            "30 frames each way",
        )
        await eventually(lambda: clients["vet"].audio_frames > 0, "the owner's audio")
        chrome = {(mime, number) for mime, number in CHROME_PAYLOAD_TYPES.items()}
        for offer in clients["vet"].offers:
            codecs, extensions = numbers(offer)
            assert codecs <= chrome, codecs
            assert extensions <= set(CHROME_EXTENSION_IDS.items()), extensions
        aiortc_codecs, _ = numbers(clients["owner"].offers[-1])
        assert ("video/vp8", 97) in aiortc_codecs  # the owner's own (aiortc's) numbers
    finally:
        await room.close()
        for client in clients.values():
            await client.close()


async def test_what_the_participant_lacks_is_renumbered_without_a_clash_or_left_out() -> None:
    theirs_pc, room_pc = RTCPeerConnection(), RTCPeerConnection()
    try:
        theirs_pc.addTrack(AudioStreamTrack())
        await theirs_pc.setLocalDescription(await theirs_pc.createOffer())
        # Audio only, Opus on 97 (aiortc's VP8 number), and no abs-send-time.
        theirs = renumbered(theirs_pc.localDescription, {"audio/opus": 97}, {MID: 9})
        room_pc.addTransceiver("audio", direction="recvonly")
        for _ in range(2):
            video = room_pc.addTransceiver("video", direction="sendonly")
            video.setCodecPreferences(capabilities("video"))
        offer = await room_pc.createOffer()
        assert (SEND_TIME, 3) in numbers(offer)[1]

        codecs, extensions = numbers(in_their_numbering(offer, theirs))
        assert ("audio/opus", 97) in codecs
        vp8 = {number for mime, number in codecs if mime == "video/vp8"}
        rtx = {number for mime, number in codecs if mime == "video/rtx"}
        assert len(vp8) == 1 and len(rtx) == 1, "one number per codec across the m-lines"
        assert not (vp8 | rtx) & {97}, "a codec took a number the participant uses"
        assert extensions == {(MID, 9)}
        parsed = sdp.SessionDescription.parse(in_their_numbering(offer, theirs).sdp)
        for media in parsed.media[1:]:
            (rtx_codec,) = [c for c in media.rtp.codecs if is_rtx(c)]
            assert rtx_codec.parameters["apt"] == next(iter(vp8))
            assert media.fmt == [c.payloadType for c in media.rtp.codecs]
    finally:
        await theirs_pc.close()
        await room_pc.close()
