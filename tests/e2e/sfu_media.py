"""A consult member's media in `sfu` mode, handled as the consult page handles it
(web/js/sfu_call.js): one aiortc connection with the hub's media server, opened anew after every
rejoin (the hub drops a member's old connection to the room when they rejoin) and on `sfu_lost`
(the replica hosting the room died). It publishes a synthetic camera of its own luma and counts
the frames it decodes per sender luma, over all its connections.

The room is the impolite peer and aiortc cannot roll back, so as on the page: an offer from the
room is taken only by a connection the room has answered, an answer only while an offer of ours
is out; anything else was meant for a connection we replaced. Signals are applied one at a
time, in arrival order. A connection that fails, or whose signal the hub could not pass on now
(`unavailable`, or no ack in time), is replaced after a pause, as on the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

import socketio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame, VideoFrame

from bench.media.frame_readers import FrameReaders
from bench.media.synthetic import ColorBarTrack, sender_luma

log = logging.getLogger(__name__)

SIGNAL_TIMEOUT_S = 5.0
REPAIR_DELAYS_S = (1.0, 2.0, 4.0, 8.0)  # web/js/sfu_call.js REPAIR_DELAYS_MS
PASSING = frozenset(("timeout", "unavailable"))


class SfuMedia:
    def __init__(self, consult_id: str, luma: int) -> None:
        self.consult_id = consult_id
        self.luma = luma
        self.frames: Counter[int] = Counter()  # decoded video frames per sender luma
        self.opened = 0  # connections opened so far
        self.lost = 0  # `sfu_lost` told so far
        self.repaired = 0  # connections replaced for a failure
        self._repairs = 0  # since one last connected
        self._repairing: asyncio.TimerHandle | None = None
        self._sio: socketio.AsyncClient | None = None
        self._pc: RTCPeerConnection | None = None
        self._readers: FrameReaders | None = None
        self._work: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._worker = asyncio.ensure_future(self._run())

    def attach(self, sio: socketio.AsyncClient) -> None:
        """Take the room's signals and `sfu_lost` on a new connection to the hub."""

        async def signal(data: dict[str, Any]) -> None:
            if data.get("consult_id") == self.consult_id and data.get("from") == "sfu":
                self._work.put_nowait(("signal", data))

        async def lost(data: dict[str, Any]) -> None:
            if data.get("consult_id") == self.consult_id:
                self.lost += 1
                self._work.put_nowait(("open", {}))

        async def signal_failed(data: dict[str, Any]) -> None:
            if data.get("consult_id") == self.consult_id and self._pc is not None:
                self._refused(self._pc, data)

        sio.on("signal", signal, namespace="/rtc")
        sio.on("sfu_lost", lost, namespace="/rtc")
        sio.on("signal_failed", signal_failed, namespace="/rtc")
        self._sio = sio

    def open(self) -> None:
        """A new connection to the media server (we are in the call, newly or again)."""
        self._work.put_nowait(("open", {}))

    async def _run(self) -> None:
        while True:
            action, data = await self._work.get()
            try:
                if action == "open":
                    await self._open()
                else:
                    await self._apply(data)
            except Exception as error:  # a connection the hub dropped; the next rejoin reopens
                log.info("sfu media of %s: %s failed: %r", self.consult_id, action, error)

    async def _open(self) -> None:
        await self._close_connection()
        self._pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._readers = readers = FrameReaders(self._count)
        pc.addTrack(ColorBarTrack(self.luma))
        pc.on("track", readers.read)
        pc.on("connectionstatechange", lambda: self._watch(pc))
        self.opened += 1
        await pc.setLocalDescription(await pc.createOffer())
        await self._send(pc)

    async def _apply(self, data: dict[str, Any]) -> None:
        pc, description = self._pc, data.get("description")
        if pc is None or description is None:
            return
        if description["type"] == "offer" and pc.remoteDescription is not None:
            await pc.setRemoteDescription(RTCSessionDescription(**description))
            await pc.setLocalDescription(await pc.createAnswer())
            await self._send(pc)
        elif description["type"] == "answer" and pc.signalingState == "have-local-offer":
            await pc.setRemoteDescription(RTCSessionDescription(**description))

    async def _send(self, pc: RTCPeerConnection) -> None:
        if self._sio is None or not self._sio.connected:
            return  # the rejoin opens a new connection
        local = pc.localDescription
        description = {"type": local.type, "sdp": local.sdp}
        payload = {"consult_id": self.consult_id, "to": "sfu", "description": description}
        try:
            ack = await self._sio.call(
                "signal", payload, namespace="/rtc", timeout=SIGNAL_TIMEOUT_S
            )
        except socketio.exceptions.TimeoutError:
            ack = {"ok": False, "error": {"code": "timeout"}}
        self._refused(pc, ack)

    def _refused(self, pc: RTCPeerConnection, ack: dict[str, Any]) -> None:
        if not ack.get("ok") and ack.get("error", {}).get("code") in PASSING:
            self._repair(pc)

    def _watch(self, pc: RTCPeerConnection) -> None:
        if pc is not self._pc:
            return
        if pc.connectionState == "connected":
            self._repairs = 0
        elif pc.connectionState == "failed":
            self._repair(pc)

    def _repair(self, pc: RTCPeerConnection) -> None:
        """Replace the connection after a pause (at most len(REPAIR_DELAYS_S) times in a row)."""
        if pc is not self._pc or self._repairing is not None:
            return
        if self._repairs >= len(REPAIR_DELAYS_S):
            log.info("sfu media of %s: gave up after %d repairs", self.consult_id, self._repairs)
            return
        delay = REPAIR_DELAYS_S[self._repairs]
        self._repairs += 1
        self._repairing = asyncio.get_running_loop().call_later(delay, self._reopen, pc)

    def _reopen(self, pc: RTCPeerConnection) -> None:
        self._repairing = None
        if pc is self._pc:
            self.repaired += 1
            self._work.put_nowait(("open", {}))

    def _count(self, _track: object, frame: AudioFrame | VideoFrame) -> None:
        if isinstance(frame, VideoFrame):
            self.frames[sender_luma(frame)] += 1

    def frames_from(self, luma: int) -> int:
        """Decoded frames whose sender luma is within VP8's few steps of `luma`."""
        return sum(count for seen, count in self.frames.items() if abs(seen - luma) <= 8)

    async def _close_connection(self) -> None:
        if self._repairing is not None:
            self._repairing.cancel()
            self._repairing = None
        if self._readers is not None:
            await self._readers.close()
        if self._pc is not None:
            await self._pc.close()
        self._pc = self._readers = None

    async def close(self) -> None:
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        await self._close_connection()
