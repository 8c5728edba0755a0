"""Janus's VideoRoom through media.janus, with a real Janus (deploy/janus, on its own port)
and real aiortc participants on this host; the test plays the signaling layer. Janus offers no
127.0.0.1 candidate, so the participants gather on the host's own addresses (aiortc's
default), and the media stays in the host."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import aiohttp
import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame, VideoFrame

from bench.media.frame_readers import FrameReaders
from bench.media.synthetic import ColorBarTrack, sender_luma
from media.janus import JanusError, JanusHandle, JanusSession
from media.janus_room import JanusRoom
from tests.janus_process import Janus
from tests.waiting import TIMEOUT_S, eventually

LUMAS = {"vet": 50, "owner": 120, "specialist": 190}


class Participant:
    """Publishes a ColorBarTrack on one connection and receives the others' on another, each
    negotiated with Janus through a plugin handle, as the hub would relay it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.token = JanusRoom.new_token()
        self.frames: Counter[str] = Counter()
        self.publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.publisher.addTrack(ColorBarTrack(LUMAS[name]))
        self.subscriber: RTCPeerConnection | None = None
        self.feed = ""
        self._readers = FrameReaders(self._count)

    async def publish(self, session: JanusSession, room: JanusRoom) -> None:
        handle = await session.attach()
        self.feed = await handle.join_as_publisher(room.id, self.token, self.name)
        await self.publisher.setLocalDescription(await self.publisher.createOffer())
        offer = self.publisher.localDescription
        answer = await handle.publish({"type": offer.type, "sdp": offer.sdp})
        await self.publisher.setRemoteDescription(RTCSessionDescription(**answer))
        while (await asyncio.wait_for(handle.events.get(), TIMEOUT_S))["janus"] != "webrtcup":
            pass  # a feed can be subscribed to once its media is up

    async def subscribe(self, session: JanusSession, room: JanusRoom, feeds: list[str]) -> None:
        if self.subscriber is not None:
            await self.subscriber.close()
        self.subscriber = pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.on("track", self._readers.read)
        handle: JanusHandle = await session.attach()
        offer = await handle.subscribe(room.id, self.token, feeds)
        await pc.setRemoteDescription(RTCSessionDescription(**offer))
        await pc.setLocalDescription(await pc.createAnswer())
        await handle.start({"type": "answer", "sdp": pc.localDescription.sdp})

    def _count(self, _track: MediaStreamTrack, frame: AudioFrame | VideoFrame) -> None:
        if isinstance(frame, VideoFrame):
            luma = sender_luma(frame)
            self.frames[min(LUMAS, key=lambda name: abs(LUMAS[name] - luma))] += 1

    async def close(self) -> None:
        await self.publisher.close()
        if self.subscriber is not None:
            await self.subscriber.close()
        await self._readers.close()


def everyone_sees_the_others(participants: list[Participant], frames: int) -> bool:
    return all(
        participant.frames[other.name] >= frames
        for participant in participants
        for other in participants
        if other is not participant
    )


async def test_three_participants_through_janus_each_decode_the_other_two(janus: Janus) -> None:
    participants = [Participant(name) for name in LUMAS]
    async with aiohttp.ClientSession() as http:
        session = await JanusSession.connect(http, janus.url)
        room = JanusRoom(await session.attach(), "consult-3")
        try:
            await room.create([p.token for p in participants], max_publishers=len(participants))
            stranger = await session.attach()
            with pytest.raises(JanusError, match="Unauthorized"):
                await stranger.join_as_publisher(room.id, JanusRoom.new_token(), "stranger")

            for participant in participants:
                await participant.publish(session, room)
            for participant in participants:
                others = [other.feed for other in participants if other is not participant]
                await participant.subscribe(session, room, others)
            await eventually(
                lambda: everyone_sees_the_others(participants, 30), "30 frames from each other"
            )
            for participant in participants:
                assert participant.frames[participant.name] == 0, "Janus echoed a sender's video"
        finally:
            for participant in participants:
                await participant.close()
            await room.destroy()
            await session.close()


async def test_a_killed_janus_is_noticed_and_a_new_session_carries_the_consult(
    janus: Janus,
) -> None:
    participants = [Participant(name) for name in ("vet", "owner")]
    async with aiohttp.ClientSession() as http:
        session = await JanusSession.connect(http, janus.url)
        room = JanusRoom(await session.attach(), "consult-2")
        await room.create([p.token for p in participants], max_publishers=2)
        for participant in participants:
            await participant.publish(session, room)
        vet, owner = participants
        await vet.subscribe(session, room, [owner.feed])
        await owner.subscribe(session, room, [vet.feed])
        try:
            await eventually(lambda: everyone_sees_the_others(participants, 15), "video")

            await janus.kill()
            await asyncio.wait_for(session.lost.wait(), TIMEOUT_S)
            with pytest.raises(ConnectionError):
                await session.attach()

            await janus.start()  # what the hub does: a new session, the room again, renegotiate
            session = await JanusSession.connect(http, janus.url)
            room = JanusRoom(await session.attach(), "consult-2")
            await room.create([p.token for p in participants], max_publishers=2)
            for participant in participants:
                participant.publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                participant.publisher.addTrack(ColorBarTrack(LUMAS[participant.name]))
                await participant.publish(session, room)
            before = {p.name: p.frames.copy() for p in participants}
            await vet.subscribe(session, room, [owner.feed])
            await owner.subscribe(session, room, [vet.feed])
            await eventually(
                lambda: (
                    vet.frames["owner"] >= before["vet"]["owner"] + 15
                    and owner.frames["vet"] >= before["owner"]["vet"] + 15
                ),
                "video through the restarted Janus",
            )
        finally:
            for participant in participants:
                await participant.close()
            with contextlib.suppress(ConnectionError):
                await room.destroy()
            await session.close()
