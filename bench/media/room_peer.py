"""What the SFU benchmarks share: the room process (SfuRooms signaled over loopback
WebSockets, with a CPU probe; `forward` is the hub's SfuRoom, `relay` the decoding and
re-encoding one it replaced, `record` the hub's SfuRoom recording every participant as the hub
does), and an aiortc peer that negotiates with one of its rooms."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import aioice.ice
from aiohttp import web
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame, VideoFrame

from bench.media.frame_readers import FrameReaders
from bench.media.relay_room import RelaySfuRoom
from media import _aiortc
from media.forwarding import Publication
from media.recorder import ParticipantRecorder
from media.sfu import SfuRoom, Source

SendOffer = Callable[[str, RTCSessionDescription], Awaitable[None]]


def recording_room(send_offer: SendOffer) -> SfuRoom:
    """The hub's SfuRoom with every published track muxed into WebM segments as the hub
    records (media.recorder, no decoding); each segment is deleted as it closes, since S3 is
    not what is measured."""
    directory = Path(tempfile.mkdtemp(prefix="pawhub-bench-record-"))
    recorders: dict[str, ParticipantRecorder] = {}
    videos: dict[str, Publication] = {}

    def publish(participant_id: str, source: Source) -> None:
        if not isinstance(source, Publication):
            return
        if source.kind == "video":
            videos[participant_id] = source
        recorder = recorders.get(participant_id)
        if recorder is None:
            (directory / participant_id).mkdir()
            recorder = recorders[participant_id] = ParticipantRecorder(
                directory / participant_id,
                on_segment=lambda segment: segment.path.unlink(),
                request_keyframe=lambda: videos[participant_id].request_keyframe(),
            )
        recorder.new_track(source.kind)
        source.add_sink(lambda packet: recorder.write(source.kind, packet))

    return SfuRoom(send_offer, on_publish=publish)


SFUS: dict[str, Callable[[SendOffer], SfuRoom]] = {
    "relay": RelaySfuRoom,
    "forward": SfuRoom,
    "record": recording_room,
}
OnVideo = Callable[[VideoFrame], None]


class RoomPeer:
    """Publishes `track` (or, without one, only subscribes) and counts decoded frames per
    received track id; `on_video` sees each decoded video frame. With `decode` False it counts
    the encoded frames it receives without decoding them, to spare the benchmark's CPU."""

    def __init__(
        self,
        signal_url: str,
        track: MediaStreamTrack | None,
        on_video: OnVideo | None = None,
        *,
        decode: bool = True,
    ) -> None:
        self.signal_url = signal_url
        self._on_video = on_video
        self._decode = decode
        self.frames: Counter[str] = Counter()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if track is None:
            self.pc.createDataChannel("subscriber")
        else:
            self.pc.addTrack(track)
        self.pc.on("track", self._receive)
        self._signaling: asyncio.Task[None] | None = None
        self._readers = FrameReaders(self._count)

    async def join(self, http: aiohttp.ClientSession) -> None:
        socket = await http.ws_connect(self.signal_url)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await socket.send_json({"type": "offer", "sdp": self.pc.localDescription.sdp})
        self._signaling = asyncio.ensure_future(self._answer_room(socket))

    async def _answer_room(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        async for message in socket:
            description = RTCSessionDescription(**message.json())
            await self.pc.setRemoteDescription(description)
            if description.type == "offer":
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await socket.send_json({"type": "answer", "sdp": self.pc.localDescription.sdp})

    def _receive(self, track: MediaStreamTrack) -> None:
        if self._decode:
            self._readers.read(track)
            return
        receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)

        def count(codec: object, frame: object) -> None:
            self.frames[track.id] += 1

        _aiortc.tap_encoded_frames(receiver, count, lambda: None, lambda: None)

    def _count(self, track: MediaStreamTrack, frame: AudioFrame | VideoFrame) -> None:
        self.frames[track.id] += 1
        if self._on_video is not None and isinstance(frame, VideoFrame):
            self._on_video(frame)

    async def close(self) -> None:
        if self._signaling is not None:
            self._signaling.cancel()
        await self._readers.close()
        await self.pc.close()


async def wait_until_up(http: aiohttp.ClientSession, base_url: str) -> None:
    for _ in range(100):
        with contextlib.suppress(aiohttp.ClientConnectionError):
            await room_cpu_s(http, base_url)
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the room process did not start")


async def room_cpu_s(http: aiohttp.ClientSession, base_url: str) -> float:
    """CPU seconds the room process has used so far."""
    async with http.get(f"{base_url}/cpu") as response:
        cpu_s: float = (await response.json())["cpu_s"]
        return cpu_s


def use_loopback_only() -> None:
    """Gather host candidates on 127.0.0.1 alone (aioice skips loopback by default)."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


async def serve_rooms(port: int, sfu: str) -> None:
    """The rooms' process (SFUS[sfu] rooms): `/signal?room=..&id=..` carries one participant's
    descriptions."""
    rooms: dict[str, SfuRoom] = {}
    sockets: dict[tuple[str, str], web.WebSocketResponse] = {}

    def room_of(name: str) -> SfuRoom:
        if name not in rooms:

            async def send_offer(participant_id: str, offer: RTCSessionDescription) -> None:
                await sockets[(name, participant_id)].send_json({"type": "offer", "sdp": offer.sdp})

            rooms[name] = SFUS[sfu](send_offer)
        return rooms[name]

    async def signal(request: web.Request) -> web.WebSocketResponse:
        name, participant_id = request.query["room"], request.query["id"]
        room = room_of(name)
        socket = sockets[(name, participant_id)] = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            description = RTCSessionDescription(**message.json())
            if description.type == "offer":
                answer = await room.handle_offer(participant_id, description)
                await socket.send_json({"type": "answer", "sdp": answer.sdp})
            else:
                await room.handle_answer(participant_id, description)
        return socket

    async def cpu(_: web.Request) -> web.Response:
        return web.json_response({"cpu_s": time.process_time()})

    app = web.Application()
    app.router.add_get("/signal", signal)
    app.router.add_get("/cpu", cpu)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()
