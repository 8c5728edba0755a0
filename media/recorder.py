"""The recorder's muxer: one participant's encoded VP8 and Opus frames written into WebM
segments with PyAV, never decoded nor re-encoded (aiortc's MediaRecorder always transcodes).

Frames come as `av.Packet`s as the SFU forwards them (media.forwarding: pts in the RTP clock of
their track, which starts at 0 per track, `time_base` 1/clock rate). Each track is put on the
recording's one clock by the arrival time of its first frame, so audio and video stay in step;
time spent paused is left out of the timeline, and nothing that arrives while paused is
written. A segment starts on a video keyframe (until one comes, frames are dropped and
`request_keyframe` is called, for the SFU to send the publisher a PLI) and is closed at the
first keyframe after SEGMENT_S (asked for once SEGMENT_S has passed), on pause and on close;
`on_segment` then gets it, for upload.
`join_segments` remuxes a participant's segments into one WebM, again without re-encoding.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import OutputContainer
from av.stream import Stream

from media.forwarding import is_vp8_keyframe

SEGMENT_S = 10.0
# Clusters of at most half a second, each written out at once, and no frame held back more
# than half a second to interleave it with a track that sends nothing (a camera without a
# microphone): a hub killed mid-segment leaves a file whose frames up to its last second can
# be salvaged (recordings.recovery).
_CRASH_SAFE = {
    "cluster_time_limit": "500",  # milliseconds
    "flush_packets": "1",
    "max_interleave_delta": "500000",  # microseconds
}
_MS = Fraction(1, 1000)


@dataclass(frozen=True)
class Segment:
    seq: int
    path: Path
    start_s: float  # on the recording's timeline (pauses left out)
    duration_s: float
    size_bytes: int
    sha256: str


def vp8_dimensions(keyframe: bytes) -> tuple[int, int]:
    """RFC 6386 9.1: a keyframe's width and height, after its 3-byte tag and start code."""
    return (
        int.from_bytes(keyframe[6:8], "little") & 0x3FFF,
        int.from_bytes(keyframe[8:10], "little") & 0x3FFF,
    )


class ParticipantRecorder:
    def __init__(
        self,
        directory: Path,
        *,
        on_segment: Callable[[Segment], None],
        request_keyframe: Callable[[], None],
        segment_s: float = SEGMENT_S,
        clock: Callable[[], float] = time.monotonic,
        first_seq: int = 0,
    ) -> None:
        self._directory = directory
        self._on_segment = on_segment
        self._request_keyframe = request_keyframe
        self._segment_s = segment_s
        self._clock = clock
        self._started_at = clock()
        self._paused_since: float | None = None
        self._paused_total = 0.0
        self._first: dict[str, tuple[int, float]] = {}  # kind -> (first pts, its arrival)
        self._seq = first_seq
        self._container: OutputContainer | None = None
        self._streams: dict[str, Any] = {}
        self._segment_start_ms = 0
        self._last_ms: dict[str, int] = {}

    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    def write(self, kind: str, packet: av.Packet[Stream]) -> None:
        """A frame as it arrives: written unless paused or before the segment's keyframe."""
        assert packet.pts is not None and packet.time_base is not None
        arrived = self._clock()
        first_pts, first_arrival = self._first.setdefault(kind, (packet.pts, arrived))
        if self.paused:
            return
        media_s = first_arrival + float((packet.pts - first_pts) * packet.time_base)
        at_ms = round((media_s - self._started_at - self._paused_total) * 1000)
        data = bytes(packet)
        keyframe = kind == "video" and is_vp8_keyframe(data)
        segment_due = at_ms - self._segment_start_ms >= self._segment_s * 1000
        if self._container is None or (keyframe and segment_due):
            if not keyframe:
                self._request_keyframe()
                return
            self._close_segment()
            self._open_segment(data, at_ms)
        elif segment_due and kind == "video":
            # Publishers send keyframes only when asked (aiortc, browsers): without asking, a
            # segment would run on until a loss made someone send a PLI.
            self._request_keyframe()
        at_ms = max(at_ms, self._last_ms.get(kind, at_ms))  # never backwards in a stream
        self._last_ms[kind] = at_ms
        out: av.Packet[Stream] = av.Packet(data)
        out.pts = out.dts = at_ms
        out.time_base = _MS
        out.stream = self._streams[kind]
        assert self._container is not None
        self._container.mux(out)

    def new_track(self, kind: str) -> None:
        """A new track of `kind` replaces the last (the participant rejoined): its clock starts
        afresh, so it is placed on the timeline by its own first frame's arrival."""
        self._first.pop(kind, None)

    def pause(self) -> None:
        if not self.paused:
            self._paused_since = self._clock()
            self._close_segment()

    def resume(self) -> None:
        if self._paused_since is not None:
            self._paused_total += self._clock() - self._paused_since
            self._paused_since = None
            self._request_keyframe()

    def close(self) -> None:
        self._close_segment()

    def _open_segment(self, keyframe: bytes, at_ms: int) -> None:
        path = self._directory / f"{self._seq:06d}.webm"
        container = av.open(str(path), "w", format="webm", options=_CRASH_SAFE)
        video = container.add_stream("vp8", rate=30)
        video.width, video.height = vp8_dimensions(keyframe)
        video.time_base = _MS
        audio = container.add_stream("opus", rate=48000)
        audio.time_base = _MS
        self._container = container
        self._streams = {"video": video, "audio": audio}
        self._segment_start_ms = at_ms
        self._last_ms = {}

    def _close_segment(self) -> None:
        container, self._container = self._container, None
        if container is None:
            return
        container.close()
        path = self._directory / f"{self._seq:06d}.webm"
        end_ms = max(self._last_ms.values(), default=self._segment_start_ms)
        body = path.read_bytes()
        segment = Segment(
            seq=self._seq,
            path=path,
            start_s=self._segment_start_ms / 1000,
            duration_s=(end_ms - self._segment_start_ms) / 1000,
            size_bytes=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
        )
        self._seq += 1
        self._on_segment(segment)


def join_segments(segments: list[Path], joined: Path) -> None:
    """Remux a participant's segments, in order, into one WebM (no decoding, no encoding);
    their timestamps already follow one timeline. Every stream any segment has is declared
    first (a segment may lack one: audio alone while the camera was off)."""
    with av.open(str(joined), "w", format="webm") as output:
        streams: dict[str, Any] = {}
        for path in segments:
            with av.open(str(path)) as source:
                for stream in source.streams:
                    if stream.type not in streams:
                        streams[stream.type] = output.add_stream_from_template(stream)
        for path in segments:
            with av.open(str(path)) as source:
                for packet in source.demux():
                    if packet.dts is None:  # a flush packet
                        continue
                    packet.stream = streams[packet.stream.type]
                    output.mux(packet)
