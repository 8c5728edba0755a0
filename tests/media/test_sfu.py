"""The embedded SFU with real aiortc peers on loopback; the test plays the signaling layer."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from typing import Literal

import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import OperationError
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from bench.media.synthetic import ColorBarTrack, sender_luma
from media.sfu import IceCandidateInit, NegotiationConflict, SfuRoom

pytestmark = pytest.mark.usefixtures("loopback_ice")

Trickle = Literal["no", "before_offer", "after_offer"]
LUMAS = {"vet": 50, "owner": 120, "specialist": 190}
TIMEOUT_S = 60
POLL_S = 0.1


async def eventually(condition: Callable[[], bool], what: str) -> None:
    for _ in range(int(TIMEOUT_S / POLL_S)):
        if condition():
            return
        await asyncio.sleep(POLL_S)
    pytest.fail(f"no {what} within {TIMEOUT_S} s")


def nearest_sender(luma: int) -> str:
    return min(LUMAS, key=lambda name: abs(LUMAS[name] - luma))


def without_candidates(description: RTCSessionDescription) -> tuple[str, list[str]]:
    """Split an SDP into the SDP a trickling browser would send and its candidate lines."""
    lines = description.sdp.splitlines()
    candidates = [line.removeprefix("a=") for line in lines if line.startswith("a=candidate:")]
    kept = [line for line in lines if not line.startswith(("a=candidate:", "a=end-of-cand"))]
    return "\r\n".join(kept) + "\r\n", candidates


class Client:
    """A participant: publishes a ColorBarTrack, decodes whatever the room sends it, and
    sends its candidates in its offer or, as browsers do, trickled before or after it."""

    def __init__(self, name: str, room: SfuRoom, *, trickle: Trickle = "no") -> None:
        self.name = name
        self.room = room
        self.trickle = trickle
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ColorBarTrack(LUMAS[name]))
        self.frames: Counter[str] = Counter()  # decoded frames per sender, told by luma
        self.offers: list[RTCSessionDescription] = []
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._read)

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

    def _read(self, track: MediaStreamTrack) -> None:
        self._readers.append(asyncio.ensure_future(self._count_frames(track)))

    async def _count_frames(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, VideoFrame)
                self.frames[nearest_sender(sender_luma(frame))] += 1

    async def close(self) -> None:
        await self.pc.close()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


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
