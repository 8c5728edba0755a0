"""Forwarding without transcoding: a published track's encoded frames, copied to its
subscribers' senders as `av.Packet`s that aiortc packetizes without encoding.

A :class:`Publication` wraps the receiver of one published track (see `media._aiortc`); each
:meth:`Publication.subscribe` returns a :class:`ForwardedTrack` to put on a subscriber's sender.

Video frames depend on the frames before them, so a subscriber's stream starts at a keyframe
and, after anything it missed (a full queue, a loss given up on, packets aiortc's buffer
dropped), waits for the next one rather
than forwarding frames its decoder cannot use. Keyframes come from the publisher, asked for
with a PLI (at most one per KEYFRAME_INTERVAL_S, later requests folded into one at the end of
the interval) when a subscriber starts, when a subscriber's own decoder asks (its PLI), and
when a subscriber had to skip frames.

A publication keeps its last keyframe and the frames since, while that keyframe is under
RECENT_KEYFRAME_S old: a subscriber that starts then gets them at once instead of waiting a
PLI's round trip and the publisher's next frame. The room asks for a keyframe when someone
joins, so one is usually this fresh by the time the joiner's connection is up.

A keyframe request that brought no keyframe is repeated (at the same rate). A lost packet is
asked for again (NACK) every NACK_INTERVAL_S; after GIVE_UP_S the publication
stops waiting for it and asks for a keyframe instead, so a loss freezes video for a fraction of
a second, not for the seconds aiortc's jitter buffer would wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from fractions import Fraction

from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import Packet
from av.stream import Stream

from media import _aiortc

log = logging.getLogger(__name__)

KEYFRAME_INTERVAL_S = 0.5
NACK_INTERVAL_S = 0.1
GIVE_UP_S = 0.3
MAX_QUEUED = {"video": 30, "audio": 25}  # ~1 s of video at 30 fps, 0.5 s of 20 ms audio
RECENT_KEYFRAME_S = 0.5  # a new subscriber's burst: at most this much video behind live
KEPT_FRAMES = MAX_QUEUED["video"] // 2  # of that burst: live frames still fit behind it

Sink = Callable[["Packet[Stream]"], None]  # takes a publication's frames as they arrive


def is_vp8_keyframe(data: bytes) -> bool:
    """RFC 6386 9.1: the frame tag's inverted key-frame bit, then the start code 9d 01 2a."""
    return len(data) >= 6 and not data[0] & 0x01 and data[3:6] == b"\x9d\x01\x2a"


class ForwardedTrack(MediaStreamTrack):
    """One subscriber's copy of a publication, read by that subscriber's sender."""

    def __init__(self, publication: Publication) -> None:
        super().__init__()
        self.kind = publication.kind
        self._publication = publication
        self._queue: asyncio.Queue[Packet[Stream] | None] = asyncio.Queue()
        self._started = False
        self._waiting_for_keyframe = publication.kind == "video"

    def push(self, packet: Packet[Stream], keyframe: bool) -> None:
        if not self._started or self.readyState != "live":
            return
        if self._waiting_for_keyframe:
            if not keyframe:
                return
            self._waiting_for_keyframe = False
        if self._queue.qsize() >= MAX_QUEUED[self.kind]:
            self.skip()  # a subscriber that fell behind starts again from a keyframe
            if self.kind == "video":
                return
        self._queue.put_nowait(packet)

    def skip(self) -> None:
        """Drop what is queued; video waits for (and asks for) the next keyframe."""
        while not self._queue.empty():
            self._queue.get_nowait()
        if self.kind == "video":
            self._waiting_for_keyframe = True
            self._publication.request_keyframe()

    @property
    def waiting_for_keyframe(self) -> bool:
        """Started, and dropping frames until a keyframe comes."""
        return self._started and self._waiting_for_keyframe

    def _start_from(self, recent: list[Packet[Stream]]) -> None:
        """Begin with the publication's recent keyframe and the frames since, or ask for one."""
        if not recent:
            self._publication.request_keyframe()
            return
        self._waiting_for_keyframe = False
        for packet in recent:
            self._queue.put_nowait(packet)

    def end(self) -> None:
        self._queue.put_nowait(None)

    async def recv(self) -> Packet[Stream]:
        if not self._started:
            self._started = True  # the sender runs: from now on it reads what is pushed
            if self._waiting_for_keyframe:
                self._start_from(self._publication.recent_frames())
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        return packet

    def stop(self) -> None:
        super().stop()
        self._publication.unsubscribe(self)
        self._queue.put_nowait(None)


class Publication:
    """One published track: its encoded frames go to every subscriber's ForwardedTrack."""

    def __init__(self, receiver: RTCRtpReceiver, kind: str) -> None:
        self.kind = kind
        self._receiver = receiver
        self._subscribers: set[ForwardedTrack] = set()
        self._sinks: list[Sink] = []
        self._ended = False
        self._last_keyframe_request = -KEYFRAME_INTERVAL_S
        self._since_keyframe: list[Packet[Stream]] = []  # the last keyframe and frames since
        self._keyframe_at = -RECENT_KEYFRAME_S
        self._keyframe_pending: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._watch = asyncio.ensure_future(self._watch_video()) if kind == "video" else None
        _aiortc.tap_encoded_frames(receiver, self._forward, self._end, self._restart_video)

    def subscribe(self) -> ForwardedTrack:
        track = ForwardedTrack(self)
        if self._ended:
            track.end()
        else:
            self._subscribers.add(track)
        return track

    def watch_sender(self, sender: RTCRtpSender) -> None:
        """Forward the PLIs of a subscriber's sender to the publisher (aiortc's own handling
        asks an encoder the sender does not use)."""
        _aiortc.on_keyframe_request(sender, self.request_keyframe)

    def add_sink(self, sink: Sink) -> Callable[[], None]:
        """Also hand every frame to `sink` (a recorder), until the returned function is called."""
        self._sinks.append(sink)

        def remove() -> None:
            if sink in self._sinks:
                self._sinks.remove(sink)

        return remove

    def unsubscribe(self, track: ForwardedTrack) -> None:
        self._subscribers.discard(track)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, at most once per KEYFRAME_INTERVAL_S."""
        if self.kind != "video" or self._ended or self._keyframe_pending is not None:
            return
        wait = self._last_keyframe_request + KEYFRAME_INTERVAL_S - time.monotonic()
        if wait <= 0:
            self._send_pli()
        else:
            self._keyframe_pending = asyncio.get_running_loop().call_later(wait, self._send_pli)

    def recent_frames(self) -> list[Packet[Stream]]:
        """The last keyframe and every frame since, if it came under RECENT_KEYFRAME_S ago."""
        if time.monotonic() - self._keyframe_at > RECENT_KEYFRAME_S:
            return []
        return list(self._since_keyframe)

    def close(self) -> None:
        self._end()
        if self._watch is not None:
            self._watch.cancel()
        for task in self._tasks:
            task.cancel()

    def _send_pli(self) -> None:
        self._keyframe_pending = None
        self._last_keyframe_request = time.monotonic()
        task = asyncio.ensure_future(_aiortc.send_pli(self._receiver))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forward(self, codec: RTCRtpCodecParameters, frame: _aiortc.EncodedFrame) -> None:
        packet: Packet[Stream] = Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = Fraction(1, codec.clockRate)
        keyframe = self.kind == "video" and is_vp8_keyframe(frame.data)
        if self.kind == "video":
            self._remember(packet, keyframe)
        for track in self._subscribers:
            track.push(packet, keyframe)
        if self._sinks:  # a recorder; copied, since a sink may remove itself
            for sink in tuple(self._sinks):
                sink(packet)

    def _remember(self, packet: Packet[Stream], keyframe: bool) -> None:
        if keyframe:
            self._since_keyframe = [packet]
            self._keyframe_at = time.monotonic()
        elif self._since_keyframe and len(self._since_keyframe) < KEPT_FRAMES:
            self._since_keyframe.append(packet)
        else:  # a run too long to replay; the next keyframe starts a new one
            self._since_keyframe = []

    def _restart_video(self) -> None:
        """Frames were lost: subscribers and the kept run start again at the next keyframe."""
        self._since_keyframe = []
        for track in self._subscribers:
            track.skip()
        self.request_keyframe()

    def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._keyframe_pending is not None:
            self._keyframe_pending.cancel()
        for track in self._subscribers:
            track.end()
        self._subscribers.clear()

    async def _watch_video(self) -> None:
        """Ask again for keyframes that did not come (a PLI sent before the publisher's first
        packet goes nowhere; RTCP can be lost) and recover from lost packets."""
        missing_since: dict[int, float] = {}
        with contextlib.suppress(asyncio.CancelledError):
            while not self._ended:
                await asyncio.sleep(NACK_INTERVAL_S)
                if any(track.waiting_for_keyframe for track in self._subscribers):
                    self.request_keyframe()
                missing = _aiortc.missing_packets(self._receiver)
                now = time.monotonic()
                missing_since = {seq: missing_since.get(seq, now) for seq in missing}
                if not missing:
                    continue
                if now - min(missing_since.values()) < GIVE_UP_S:
                    await _aiortc.send_nack(self._receiver, sorted(missing))
                    continue
                log.debug("gave up on %d lost packets; asking for a keyframe", len(missing))
                _aiortc.give_up_on_missing(self._receiver)
                missing_since.clear()
                self._restart_video()
