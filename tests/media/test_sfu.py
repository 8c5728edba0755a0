"""The embedded SFU with real aiortc peers on loopback; the test plays the signaling layer."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Literal

import pytest
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import OperationError
from av import AudioFrame, VideoFrame

from bench.media.frame_readers import FrameReaders
from bench.media.synthetic import ColorBarTrack, frame_number, sender_luma
from media import _aiortc, forwarding
from media.forwarding import KEYFRAME_INTERVAL_S
from media.sdp_rules import IceCandidateInit
from media.sfu import NegotiationConflict, SfuRoom
from tests.waiting import POLL_S, TIMEOUT_S, eventually

pytestmark = pytest.mark.usefixtures("loopback_ice")

Trickle = Literal["no", "before_offer", "after_offer"]
LUMAS = {"vet": 50, "owner": 120, "specialist": 190, "late": 230}


def nearest_sender(luma: int) -> str:
    return min(LUMAS, key=lambda name: abs(LUMAS[name] - luma))


def without_candidates(description: RTCSessionDescription) -> tuple[str, list[str]]:
    """Split an SDP into the SDP a trickling browser would send and its candidate lines."""
    lines = description.sdp.splitlines()
    candidates = [line.removeprefix("a=") for line in lines if line.startswith("a=candidate:")]
    kept = [line for line in lines if not line.startswith(("a=candidate:", "a=end-of-cand"))]
    return "\r\n".join(kept) + "\r\n", candidates


def forwarded_streams(offer: RTCSessionDescription) -> list[str]:
    """The stream id (the `a=msid` first part) of each track the room sends in `offer`."""
    streams: list[str] = []
    for section in offer.sdp.split("\r\nm=")[1:]:
        lines = section.splitlines()
        if "a=sendonly" in lines:
            msid = next(line for line in lines if line.startswith("a=msid:"))
            streams.append(msid.split()[0].removeprefix("a=msid:"))
    return streams


class Client:
    """A participant: publishes a ColorBarTrack, decodes whatever the room sends it, and
    sends its candidates in its offer or, as browsers do, trickled before or after it.
    With `audio`, it also publishes a microphone (silence) and counts the audio it gets."""

    def __init__(
        self, name: str, room: SfuRoom, *, trickle: Trickle = "no", audio: bool = False
    ) -> None:
        self.name = name
        self.room = room
        self.trickle = trickle
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ColorBarTrack(LUMAS[name]))
        if audio:
            self.pc.addTrack(AudioStreamTrack())
        self.frames: Counter[str] = Counter()  # decoded frames per sender, told by luma
        self.numbers: defaultdict[str, list[int]] = defaultdict(list)  # their frame numbers
        self.audio_frames = 0
        self.offers: list[RTCSessionDescription] = []
        self._readers = FrameReaders(self._count)
        self.pc.on("track", self._readers.read)

    async def join(self) -> RTCSessionDescription:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer: RTCSessionDescription = self.pc.localDescription
        if self.trickle == "no":
            answer = await self.room.handle_offer(self.name, offer)
        else:
            sdp, candidates = without_candidates(offer)
            if self.trickle == "before_offer":
                await self._trickle(candidates)
            answer = await self.room.handle_offer(self.name, RTCSessionDescription(sdp, "offer"))
            if self.trickle == "after_offer":
                await self._trickle(candidates)
        await self.pc.setRemoteDescription(answer)
        return answer

    async def _trickle(self, candidates: list[str]) -> None:
        for line in candidates:
            init: IceCandidateInit = {"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0}
            await self.room.add_ice_candidate(self.name, init)
        await self.room.add_ice_candidate(self.name, None)

    async def answer_room_offer(self, offer: RTCSessionDescription) -> None:
        self.offers.append(offer)
        await self.pc.setRemoteDescription(offer)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.room.handle_answer(self.name, self.pc.localDescription)

    def _count(self, _track: MediaStreamTrack, frame: AudioFrame | VideoFrame) -> None:
        if isinstance(frame, AudioFrame):
            self.audio_frames += 1
            return
        sender = nearest_sender(sender_luma(frame))
        self.frames[sender] += 1
        self.numbers[sender].append(frame_number(frame))

    async def close(self) -> None:
        await self.pc.close()
        await self._readers.close()


async def test_three_participants_each_receive_the_other_two() -> None:
    clients: dict[str, Client] = {}

    async def send_offer(participant_id: str, offer: RTCSessionDescription) -> None:
        await clients[participant_id].answer_room_offer(offer)

    room = SfuRoom(send_offer)
    clients.update(
        vet=Client("vet", room),
        owner=Client("owner", room, trickle="before_offer"),
        specialist=Client("specialist", room, trickle="after_offer"),
    )
    try:
        for client in clients.values():
            answer = await client.join()
            assert "a=candidate:" in answer.sdp and "127.0.0.1" in answer.sdp

        def everyone_sees_the_others(frames: int) -> bool:
            return all(
                client.frames[other] >= frames
                for client in clients.values()
                for other in clients
                if other != client.name
            )

        await eventually(lambda: everyone_sees_the_others(30), "30 frames from each other")
        for client in clients.values():
            assert client.frames[client.name] == 0, "the room echoed a track to its sender"
            assert client.pc.connectionState == "connected"
            # Each forwarded track's stream is named after its publisher.
            streams = forwarded_streams(client.offers[-1])
            assert sorted(streams) == sorted(set(clients) - {client.name})
        assert sorted(room.participant_ids) == ["owner", "specialist", "vet"]

        await room.remove("specialist")
        await clients["specialist"].close()
        assert sorted(room.participant_ids) == ["owner", "vet"]

        def told_specialist_left() -> bool:
            return all(
                any(offer.sdp.count("a=inactive") == 1 for offer in clients[name].offers)
                for name in ("vet", "owner")
            )

        await eventually(told_specialist_left, "renegotiation with those who stayed")
        before = {name: clients[name].frames.copy() for name in ("vet", "owner")}
        await eventually(
            lambda: (
                clients["vet"].frames["owner"] >= before["vet"]["owner"] + 30
                and clients["owner"].frames["vet"] >= before["owner"]["vet"] + 30
            ),
            "the two who stayed keep receiving each other",
        )
    finally:
        await room.close()
        for client in clients.values():
            await client.close()


async def test_descriptions_out_of_turn_are_conflicts() -> None:
    offered: asyncio.Queue[str] = asyncio.Queue()

    async def leave_unanswered(participant_id: str, offer: RTCSessionDescription) -> None:
        await offered.put(participant_id)

    room = SfuRoom(leave_unanswered)
    vet, owner = Client("vet", room), Client("owner", room)
    try:
        await vet.join()
        await eventually(lambda: vet.pc.connectionState == "connected", "vet connected")
        vet_sdp = vet.pc.localDescription.sdp
        with pytest.raises(NegotiationConflict, match="no offer"):
            await room.handle_answer("vet", RTCSessionDescription(vet_sdp, "answer"))

        await owner.join()
        assert await asyncio.wait_for(offered.get(), TIMEOUT_S) in {"vet", "owner"}
        await eventually(lambda: offered.qsize() == 1, "the room offered to both")
        with pytest.raises(NegotiationConflict, match="outstanding"):
            await room.handle_offer("vet", RTCSessionDescription(vet_sdp, "offer"))
        with pytest.raises(KeyError):
            await room.handle_answer("stranger", RTCSessionDescription(vet_sdp, "answer"))
        no_common_codec = vet_sdp.replace("VP8/", "XYZ/").replace("H264/", "XYZ/")
        with pytest.raises(OperationError):
            await room.handle_offer("stranger", RTCSessionDescription(no_common_codec, "offer"))
        assert sorted(room.participant_ids) == ["owner", "vet"]
        with pytest.raises(ValueError, match="sdpMid"):
            await room.add_ice_candidate(
                "vet", {"candidate": "candidate:1 1 udp 1 1.2.3.4 9 typ host"}
            )
    finally:
        await room.close()
        await vet.close()
        await owner.close()


def codecs_of(sdp: str) -> set[str]:
    """The codec names an SDP's rtpmap lines offer or accept."""
    return {
        line.split(" ", 1)[1].split("/")[0]
        for line in sdp.splitlines()
        if line.startswith("a=rtpmap:")
    }


def count_keyframe_requests(client: Client) -> Counter[str]:
    """Count the keyframe requests (PLI, FIR) that reach the client's video sender."""
    video = next(sender for sender in client.pc.getSenders() if sender.kind == "video")
    asked = Counter[str]()
    ask = video._send_keyframe

    def count_and_ask() -> None:
        asked["keyframes"] += 1
        ask()

    video._send_keyframe = count_and_ask  # type: ignore[method-assign]
    return asked


def advancing(numbers: list[int]) -> bool:
    return numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


async def test_frames_are_forwarded_as_encoded_and_a_late_subscriber_gets_a_keyframe() -> None:
    clients: dict[str, Client] = {}

    async def send_offer(participant_id: str, offer: RTCSessionDescription) -> None:
        await clients[participant_id].answer_room_offer(offer)

    room = SfuRoom(send_offer)
    clients.update(vet=Client("vet", room, audio=True), owner=Client("owner", room, audio=True))
    try:
        for client in clients.values():
            answer = await client.join()
            assert codecs_of(answer.sdp) == {"VP8", "rtx", "opus"}
            assert "b=AS:" in answer.sdp
        await eventually(
            lambda: all(
                client.frames[other] >= 30 and client.audio_frames >= 50
                for client in clients.values()
                for other in clients
                if other != client.name
            ),
            "video and audio from each other",
        )
        for name, other in (("vet", "owner"), ("owner", "vet")):
            numbers = clients[name].numbers[other]
            assert advancing(numbers) and numbers[-1] - numbers[0] >= 29, numbers
            assert all(
                codecs_of(offer.sdp) <= {"VP8", "rtx", "opus"} for offer in clients[name].offers
            )

        # The publishers' encoders made their one keyframe at the start: without a PLI from
        # the room, a subscriber joining now would wait minutes for the next one.
        await asyncio.sleep(2)
        clients["late"] = Client("late", room)
        await clients["late"].join()
        await eventually(
            lambda: clients["late"].frames["vet"] >= 15 and clients["late"].frames["owner"] >= 15,
            "the late subscriber's video",
        )
        for other in ("vet", "owner"):
            numbers = clients["late"].numbers[other]
            assert numbers[0] >= 15 and advancing(numbers), numbers  # it started mid-stream
        await eventually(
            lambda: clients["vet"].frames["late"] >= 15 and clients["owner"].frames["late"] >= 15,
            "the others' video of the late subscriber",
        )

        # A subscriber's decoder asking for a keyframe (PLI) reaches the publisher.
        asked = count_keyframe_requests(clients["vet"])
        owner_video = next(
            r for r in clients["owner"].pc.getReceivers() if r.track and r.track.kind == "video"
        )
        await asyncio.sleep(KEYFRAME_INTERVAL_S)  # past the late subscriber's requests
        await _aiortc.send_pli(owner_video)
        await eventually(lambda: asked["keyframes"] >= 1, "the owner's PLI at the vet")
    finally:
        await room.close()
        for client in clients.values():
            await client.close()


def drop_once(sender: RTCRtpSender, count: int) -> Callable[[], None]:
    """Make `sender` lose its next `count` video packets for good (their retransmissions
    too); returns what starts the loss."""
    transport = sender.transport
    send_rtp = transport._send_rtp
    lost: set[int] = set()
    started = False

    async def lossy_send_rtp(data: bytes) -> None:
        is_rtcp = 192 <= data[1] <= 223
        if not is_rtcp:
            ssrc = int.from_bytes(data[8:12], "big")
            sequence = int.from_bytes(data[2:4], "big")
            if ssrc == sender._rtx_ssrc:
                return
            if ssrc == sender._ssrc and started and (len(lost) < count or sequence in lost):
                lost.add(sequence)
                return
        await send_rtp(data)

    def start() -> None:
        nonlocal started
        started = True

    transport._send_rtp = lossy_send_rtp  # type: ignore[method-assign]
    return start


async def vet_and_owner_in_a_room() -> tuple[SfuRoom, dict[str, Client]]:
    """A room the vet and the owner joined, each answering the room's offers."""
    clients: dict[str, Client] = {}

    async def send_offer(participant_id: str, offer: RTCSessionDescription) -> None:
        await clients[participant_id].answer_room_offer(offer)

    room = SfuRoom(send_offer)
    clients.update(vet=Client("vet", room), owner=Client("owner", room))
    for client in clients.values():
        await client.join()
    return room, clients


async def test_a_lost_packet_costs_a_keyframe_not_a_frozen_stream() -> None:
    room, clients = await vet_and_owner_in_a_room()
    try:
        owner = clients["owner"]
        await eventually(lambda: owner.frames["vet"] >= 30, "the vet's video")
        start_loss = drop_once(clients["vet"].pc.getSenders()[0], count=2)
        start_loss()
        before = owner.frames["vet"]
        # aiortc alone would wait for the lost packets until 512 more had arrived: over 30 s
        # of this video. The room gives up after a third of a second and asks for a keyframe.
        for _ in range(100):
            if owner.frames["vet"] >= before + 30:
                break
            await asyncio.sleep(POLL_S)
        else:
            pytest.fail("the vet's video froze for 10 s after a lost packet")
        numbers = owner.numbers["vet"]
        gaps = [later - earlier for earlier, later in itertools.pairwise(numbers)]
        assert max(gaps) > 1 and advancing(numbers), "no frame was lost"
    finally:
        await room.close()
        for client in clients.values():
            await client.close()


async def test_a_joiner_starts_from_the_keyframe_asked_for_when_it_offered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # However slow this machine, the keyframe asked for at the offer is kept for the joiner.
    monkeypatch.setattr(forwarding, "RECENT_KEYFRAME_S", TIMEOUT_S)
    monkeypatch.setattr(forwarding, "KEPT_FRAMES", 10_000)
    clients: dict[str, Client] = {}

    async def send_offer(participant_id: str, offer: RTCSessionDescription) -> None:
        await clients[participant_id].answer_room_offer(offer)

    room = SfuRoom(send_offer)
    clients.update(vet=Client("vet", room), late=Client("late", room))
    try:
        await clients["vet"].join()
        await eventually(lambda: bool(room.publications("vet")), "the vet publishing")
        (vet_published,) = (s for s in room.publications("vet") if s.kind == "video")
        await eventually(lambda: bool(vet_published.recent_frames()), "the vet's first frames")
        asked = count_keyframe_requests(clients["vet"])

        late = clients["late"]
        await late.pc.setLocalDescription(await late.pc.createOffer())
        answer = await room.handle_offer("late", late.pc.localDescription)
        # Asked for at the offer: the joiner has not even applied the answer, so no
        # subscription of its can have started.
        await eventually(lambda: asked["keyframes"] == 1, "a keyframe asked for at the offer")
        await late.pc.setRemoteDescription(answer)
        await eventually(lambda: late.frames["vet"] >= 15, "the joiner's video of the vet")
        # The subscription started from that keyframe, kept for it: it asked for no other
        # (one more would have gone out within KEYFRAME_INTERVAL_S of the first).
        await asyncio.sleep(2 * KEYFRAME_INTERVAL_S)
        assert asked["keyframes"] == 1
        assert advancing(late.numbers["vet"])
    finally:
        await room.close()
        for client in clients.values():
            await client.close()


async def test_an_offer_from_a_participants_new_connection_replaces_its_old_one() -> None:
    room, clients = await vet_and_owner_in_a_room()
    try:
        await eventually(lambda: clients["owner"].frames["vet"] >= 15, "the vet's video")
        # The owner opens a new connection (as a page does on `sfu_lost` or after a rejoin)
        # without the room being told to drop the old one: its offer has new ICE credentials.
        old = clients["owner"]
        clients["owner"] = Client("owner", room)
        await clients["owner"].join()
        await old.close()
        vet_saw = clients["vet"].frames["owner"]
        await eventually(lambda: clients["owner"].frames["vet"] >= 15, "the vet's video, anew")
        await eventually(lambda: clients["vet"].frames["owner"] >= vet_saw + 15, "the owner's")
        assert sorted(room.participant_ids) == ["owner", "vet"]
    finally:
        await room.close()
        for client in clients.values():
            await client.close()
