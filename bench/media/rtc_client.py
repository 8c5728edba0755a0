"""A `/rtc` participant for tests and benchmarks: a python-socketio client that records what the
hub sends, and aiortc peers (one per remote: a user id, or "sfu") that publish a synthetic
camera and count the frames they decode, per sender.

Negotiation is the simple form of perfect negotiation that aiortc allows (it has no rollback):
whoever `offer`s is the impolite side, the other answers; signals are applied one at a time,
in the order they arrive. aiortc gathers all its candidates before it offers or answers, so its
descriptions carry them and nothing is trickled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import socketio
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from av import AudioFrame, VideoFrame

from bench.media.frame_readers import FrameReaders
from bench.media.synthetic import ColorBarTrack, sender_luma

EVENTS = (
    "signal",
    "signal_failed",
    "peer_joined",
    "peer_left",
    "lobby",
    "lobby_left",
    "denied",
    "admitted",
    "quality",
    "consent",
    "recording",
    "recording_storage",
    "sfu_lost",
    "mode",
    "media",
)
Ack = dict[str, Any]


class RtcClient:
    """One Socket.IO connection to `/rtc`, recording every event it receives."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self.peers: dict[str, MediaPeer] = {}
        self._arrived = asyncio.Condition()
        self._signals: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._applier: asyncio.Task[None] | None = None
        for name in EVENTS:
            self.sio.on(name, self._recorder(name), namespace="/rtc")

    @classmethod
    async def connect(cls, url: str, token: str) -> RtcClient:
        client = cls()
        await client.sio.connect(
            url, auth={"token": token}, namespaces=["/rtc"], transports=["websocket"]
        )
        client._applier = asyncio.create_task(client._apply_signals())
        return client

    def _recorder(self, name: str) -> Callable[[dict[str, Any]], Any]:
        async def record(data: dict[str, Any]) -> None:
            async with self._arrived:
                self.received[name].append(data)
                self._arrived.notify_all()
            if name == "signal":
                await self._signals.put(data)

        return record

    async def call(self, event: str, payload: object, timeout: float = 30) -> Ack:
        ack: Ack = await self.sio.call(event, payload, namespace="/rtc", timeout=timeout)
        return ack

    async def wait_for(
        self,
        name: str,
        matching: Callable[[dict[str, Any]], bool] = lambda _: True,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """The first `name` event that `matching` accepts, waiting for it if need be."""

        def found() -> dict[str, Any] | None:
            return next((data for data in self.received[name] if matching(data)), None)

        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: found() is not None), timeout)
        event = found()
        assert event is not None
        return event

    def peer(self, consult_id: str, remote: str, luma: int) -> MediaPeer:
        """The peer connection with `remote` (created on first use), publishing `luma`."""
        if remote not in self.peers:
            self.peers[remote] = MediaPeer(self, consult_id, remote, luma)
        return self.peers[remote]

    async def _apply_signals(self) -> None:
        while True:
            data = await self._signals.get()
            peer = self.peers.get(data["from"])
            if peer is not None:
                await peer.apply(data)

    async def close(self) -> None:
        if self._applier is not None:
            self._applier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._applier
        for peer in self.peers.values():
            await peer.close()
        if self.sio.connected:
            await self.sio.disconnect()


class MediaPeer:
    """An aiortc connection with one remote, publishing a ColorBarTrack of `luma`."""

    def __init__(self, client: RtcClient, consult_id: str, remote: str, luma: int) -> None:
        self.client = client
        self.consult_id = consult_id
        self.remote = remote
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ColorBarTrack(luma))
        self.frames: Counter[int] = Counter()  # decoded frames per sender luma
        self.first_frame_at: float | None = None
        self.connected_at: float | None = None
        self._readers = FrameReaders(self._count)
        self.pc.on("track", self._readers.read)
        self.pc.on("iceconnectionstatechange", self._ice_changed)

    async def offer(self) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self._send_description()

    async def apply(self, data: dict[str, Any]) -> None:
        """Apply a relayed signal: answer offers, take answers, add candidates."""
        description = data.get("description")
        if description is not None:
            await self.pc.setRemoteDescription(
                RTCSessionDescription(description["sdp"], description["type"])
            )
            if description["type"] == "offer":
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await self._send_description()
        candidate = data.get("candidate")
        if candidate is not None and candidate["candidate"]:
            parsed = candidate_from_sdp(candidate["candidate"].removeprefix("candidate:"))
            parsed.sdpMid = candidate.get("sdpMid")
            parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
            await self.pc.addIceCandidate(parsed)

    async def _send_description(self) -> None:
        local = self.pc.localDescription
        ack = await self.client.call(
            "signal",
            {
                "consult_id": self.consult_id,
                "to": self.remote,
                "description": {"type": local.type, "sdp": local.sdp},
            },
        )
        if not ack["ok"]:
            raise RuntimeError(f"signal refused: {ack['error']}")

    def senders(self, lumas: dict[str, int]) -> Counter[str]:
        """Decoded frames per sender name, each frame credited to the nearest luma."""
        named: Counter[str] = Counter()
        for luma, count in self.frames.items():
            named[min(lumas, key=lambda name: abs(lumas[name] - luma))] += count
        return named

    def _ice_changed(self) -> None:
        if self.pc.iceConnectionState in ("connected", "completed") and not self.connected_at:
            self.connected_at = time.monotonic()

    def _count(self, _track: MediaStreamTrack, frame: AudioFrame | VideoFrame) -> None:
        if isinstance(frame, VideoFrame):
            if self.first_frame_at is None:
                self.first_frame_at = time.monotonic()
            self.frames[sender_luma(frame)] += 1

    async def close(self) -> None:
        await self.pc.close()
        await self._readers.close()
