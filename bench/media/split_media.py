"""A consult member's media in `sfu` mode when the media server takes two connections per member
(`sfu_connections: 2`, Janus): a `publish` connection it offers with a synthetic camera of its
own luma (or the tracks `make_track` makes), and a `subscribe` connection that answers the
media server's offers (the first and every renegotiation as others come and go). It counts the
frames it decodes per sender luma.

On `sfu_lost` it drops both and publishes anew, retrying while the hub answers `unavailable`
(Janus out of reach). Each publish connection has a name (`session`); the media server's
signals for an earlier one (`to_session`) are ignored. Signals are applied one at a time, in
arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame, VideoFrame

from bench.media.frame_readers import FrameReaders
from bench.media.rtc_client import Ack, RtcClient
from bench.media.synthetic import ColorBarTrack, sender_luma

log = logging.getLogger(__name__)

RETRY_S = 0.5


class SplitMedia:
    def __init__(
        self,
        client: RtcClient,
        consult_id: str,
        luma: int,
        make_track: Callable[[], MediaStreamTrack] | None = None,
    ) -> None:
        self.consult_id = consult_id
        self.luma = luma
        self._make_track = make_track or (lambda: ColorBarTrack(luma))
        self.frames: Counter[int] = Counter()  # decoded video frames per sender luma
        self.refusals: list[Ack] = []  # the hub's error acks to our publish offers
        self.subscribe_offers: list[str] = []  # the media server's offers (SDP) to subscribe
        self.lost = 0  # `sfu_lost` told so far
        self.answered = 0  # the media server's answers to our publish offers
        self._client = client
        self._publisher: RTCPeerConnection | None = None
        self._subscriber: RTCPeerConnection | None = None
        self._session = ""  # our name for the publish connection
        self._readers = FrameReaders(self._count)
        self._work: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._worker = asyncio.ensure_future(self._run())
        client.sio.on("signal", self._signal, namespace="/rtc")
        client.sio.on("sfu_lost", self._lost, namespace="/rtc")

    def publish(self) -> None:
        self._work.put_nowait(("publish", {}))

    async def _signal(self, data: dict[str, Any]) -> None:
        if data.get("consult_id") == self.consult_id and data.get("from") == "sfu":
            self._work.put_nowait(("signal", data))

    async def _lost(self, data: dict[str, Any]) -> None:
        if data.get("consult_id") == self.consult_id:
            self.lost += 1
            self._work.put_nowait(("publish", {}))

    async def _run(self) -> None:
        while True:
            action, data = await self._work.get()
            try:
                if action == "publish":
                    await self._publish()
                else:
                    await self._apply(data)
            except Exception as error:
                log.warning("split media of %s: %s failed: %r", self.consult_id, action, error)

    async def _publish(self) -> None:
        """A new publish connection, offered until the hub takes it."""
        await self._close_connections()
        self._publisher = pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._session = secrets.token_hex(8)
        pc.addTrack(self._make_track())
        await pc.setLocalDescription(await pc.createOffer())
        while not (ack := await self._send("publish", pc))["ok"]:
            self.refusals.append(ack)
            if ack["error"]["code"] != "unavailable":
                return
            await asyncio.sleep(RETRY_S)

    async def _apply(self, data: dict[str, Any]) -> None:
        description, pc_name = data["description"], data.get("pc")
        if data.get("to_session") != self._session:
            return  # for a publish connection we replaced
        if pc_name == "publish" and description["type"] == "answer":
            if self._publisher is not None and self._publisher.signalingState == "have-local-offer":
                await self._publisher.setRemoteDescription(RTCSessionDescription(**description))
                self.answered += 1
        elif pc_name == "subscribe" and description["type"] == "offer":
            self.subscribe_offers.append(description["sdp"])
            if self._subscriber is None:
                self._subscriber = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                self._subscriber.on("track", self._readers.read)
            pc = self._subscriber
            await pc.setRemoteDescription(RTCSessionDescription(**description))
            await pc.setLocalDescription(await pc.createAnswer())
            ack = await self._send("subscribe", pc)
            assert ack["ok"], ack

    async def _send(self, pc_name: str, pc: RTCPeerConnection) -> Ack:
        local = pc.localDescription
        return await self._client.call(
            "signal",
            {
                "consult_id": self.consult_id,
                "to": "sfu",
                "pc": pc_name,
                "session": self._session,
                "description": {"type": local.type, "sdp": local.sdp},
            },
        )

    def _count(self, _track: object, frame: AudioFrame | VideoFrame) -> None:
        if isinstance(frame, VideoFrame):
            self.frames[sender_luma(frame)] += 1

    def frames_from(self, luma: int) -> int:
        """Decoded frames whose sender luma is within VP8's few steps of `luma`."""
        return sum(count for seen, count in self.frames.items() if abs(seen - luma) <= 8)

    async def _close_connections(self) -> None:
        for pc in (self._publisher, self._subscriber):
            if pc is not None:
                await pc.close()
        self._publisher = self._subscriber = None

    async def close(self) -> None:
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        await self._close_connections()
        await self._readers.close()
