"""What the SFU benchmarks share: an aiortc peer that negotiates with a room served over a
WebSocket by the benchmark's room process, and the room process's CPU probe."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import aiohttp
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError


class RoomPeer:
    """Publishes `track` (or, without one, only subscribes) and counts decoded frames per
    received track id."""

    def __init__(self, signal_url: str, track: MediaStreamTrack | None) -> None:
        self.signal_url = signal_url
        self.frames: Counter[str] = Counter()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if track is None:
            self.pc.createDataChannel("subscriber")
        else:
            self.pc.addTrack(track)
        self.pc.on("track", lambda received: asyncio.ensure_future(self._count(received)))
        self._signaling: asyncio.Task[None] | None = None

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

    async def _count(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames[track.id] += 1

    async def close(self) -> None:
        if self._signaling is not None:
            self._signaling.cancel()
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
