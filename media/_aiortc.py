"""Every touch of aiortc's internals the forwarding SFU needs, in one place.

aiortc has no public API to read a receiver's encoded frames, to hear a sender's keyframe
requests when it sends pre-encoded packets, or to restrict the codecs of an answer's
transceivers. These hooks reach into private attributes that aiortc 1.16 has; pyproject pins
aiortc to that minor version and tests/media/test_aiortc_hooks.py fails if an upgrade moves
them.

- Encoded frames: the receiver puts each reassembled frame, `(codec, JitterFrame)`, on its
  decoder queue (`_RTCRtpReceiver__decoder_queue`) for a decoder thread (aiortc issue 55).
  `tap_encoded_frames` swaps that queue for one whose `put` hands frames to a callback; the
  decoder thread then only ever sees the end-of-track `None`, so nothing is decoded.
- Frame assembly: a video receiver's jitter buffer (`_RTCRtpReceiver__jitter_buffer`) hands
  on a frame only when the next frame's first packet arrives, a frame interval late (33 ms at
  30 fps), and an audio receiver's holds four packets back (80 ms of 20 ms packets) to smooth
  a playout the room does not do; `tap_encoded_frames` gives video receivers a buffer that
  hands a frame on at its last packet (and every frame a late packet completes, where the
  receiver takes one per packet), and audio receivers one that hands each packet on.
- Keyframe requests: a sender's RTCP PLI/FIR calls `sender._send_keyframe()`, which only sets
  a flag its encoder reads; packets it packs without encoding never see it.
- Loss: the receiver NACKs a gap once, when it sees it, and its jitter buffer then waits for
  the missing packet until 512 packets have piled up (seconds of frozen video).
- Stream ids: every sender of a connection announces one random stream id (the first part of
  its m-line's `a=msid`), kept in the sender's `_stream_id`; the room names each forwarded
  track's stream after its publisher, so subscribers can tell whose tracks they receive.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, Protocol

from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.jitterbuffer import MAX_MISORDER, JitterBuffer, JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

# The minor version these hooks were written against (and pyproject pins).
AIORTC_SERIES = "1.16."


class EncodedFrame(Protocol):
    """aiortc's JitterFrame: one whole encoded frame, its timestamp from 0 in clock-rate units."""

    data: bytes
    timestamp: int


OnEncodedFrame = Callable[[RTCRtpCodecParameters, EncodedFrame], None]


class _TappedDecoderQueue:
    """Stands in for a receiver's decoder queue: frames go to `on_frame`, not to a decoder."""

    def __init__(
        self,
        original: queue.Queue[Any],
        on_frame: OnEncodedFrame,
        on_end: Callable[[], None],
        also_complete: Callable[[], Iterator[EncodedFrame]],
    ) -> None:
        self._original = original
        self._on_frame = on_frame
        self._on_end = on_end
        self._also_complete = also_complete

    def put(self, item: tuple[RTCRtpCodecParameters, EncodedFrame] | None) -> None:
        if item is None:  # the receiver stops: let its decoder thread end
            self._original.put(None)
            self._on_end()
            return
        codec, frame = item
        self._on_frame(codec, frame)
        for later in self._also_complete():  # the receiver takes one frame per packet
            self._on_frame(codec, later)

    def get(self) -> Any:  # the decoder thread, started with this queue, waits for the end
        return self._original.get()


class FrameAtMarkerBuffer(JitterBuffer):
    """aiortc's video jitter buffer, but a frame whose packets are all here, up to the one
    with the RTP marker bit (a video frame's last, RFC 7741 4.1), is handed on at once rather
    than when the next frame's first packet arrives. Everything else is aiortc's: ordering,
    duplicates, overflow, and frames whose marker never came. When aiortc drops packets
    (overflow, or a jump it takes for a restarted sender) `on_gap` is called before the frame
    that packet completed is handed on: frames after a gap may not decode."""

    def __init__(self, capacity: int, on_gap: Callable[[], None]) -> None:
        super().__init__(capacity, is_video=True)
        self._on_gap = on_gap

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        dropped, frame = super().add(packet)  # aiortc's "send a PLI", which it then does
        if dropped:
            self._on_gap()
        return dropped, frame

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        return self._frame_at_marker() or super()._remove_frame(sequence_number)

    def complete_frames(self, map_timestamp: Callable[[int], int]) -> Iterator[JitterFrame]:
        """The frames the last packet completed besides the one `add` returned (a late packet
        can complete several), their timestamps mapped as the receiver maps that one's."""
        while self._origin is not None and (frame := self._frame_at_marker()) is not None:
            frame.timestamp = map_timestamp(frame.timestamp)
            yield frame

    def _frame_at_marker(self) -> JitterFrame | None:
        assert self._origin is not None  # `add` sets it before asking for a frame
        # Padding (libwebrtc pads after a frame's last packet when RTX is off) carries no data:
        # left at the origin, aiortc's release would hand it on as an empty frame.
        while (first := self._packets[self._origin % self.capacity]) is not None:
            if first._data:  # type: ignore[attr-defined]
                break
            self.remove(1)
        packets: list[RtpPacket] = []
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]
            if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                return None  # a gap, or the next frame began without a marker
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                data = b"".join(p._data for p in packets)  # type: ignore[attr-defined]
                return JitterFrame(data=data, timestamp=packet.timestamp)
        return None


class PacketAtOnceBuffer(JitterBuffer):
    """For audio, whose packets are each a whole frame: a packet after the last one handed on
    is handed on as it arrives; a later-arriving older one (or a duplicate) is dropped, as a
    playout buffer drops what comes after its turn. Smoothing playout is the subscribers'.
    A packet MAX_MISORDER or more behind is a new start (a restarted sender), as in aiortc."""

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self._origin is not None:
            behind = uint16_add(self._origin, -packet.sequence_number)
            if 0 < behind <= MAX_MISORDER:
                return False, None  # not after the last one handed on
        self._origin = uint16_add(packet.sequence_number, 1)  # the next one due
        data: bytes = packet._data  # type: ignore[attr-defined]
        return False, JitterFrame(data=data, timestamp=packet.timestamp)


def tap_encoded_frames(
    receiver: RTCRtpReceiver,
    on_frame: OnEncodedFrame,
    on_end: Callable[[], None],
    on_gap: Callable[[], None],
) -> None:
    """Send the receiver's encoded frames to `on_frame` (on the event loop) instead of its
    decoder, each frame as soon as it is complete; `on_gap` when video packets were dropped
    (see FrameAtMarkerBuffer); `on_end` once the receiver stops."""
    buffer: JitterBuffer = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    also_complete: Callable[[], Iterator[EncodedFrame]] = partial(iter, ())
    if buffer._origin is None:  # not yet used: nothing to carry over
        if buffer._is_video:
            video = FrameAtMarkerBuffer(buffer.capacity, on_gap)
            mapper = receiver._RTCRtpReceiver__timestamp_mapper  # type: ignore[attr-defined]
            also_complete = partial(video.complete_frames, mapper.map)
            buffer = video
        else:
            buffer = PacketAtOnceBuffer(buffer.capacity)
        receiver._RTCRtpReceiver__jitter_buffer = buffer  # type: ignore[attr-defined]
    original = receiver._RTCRtpReceiver__decoder_queue  # type: ignore[attr-defined]
    receiver._RTCRtpReceiver__decoder_queue = _TappedDecoderQueue(  # type: ignore[attr-defined]
        original, on_frame, on_end, also_complete
    )


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call `callback` when the sender's remote end sends a PLI or FIR."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


def name_stream(sender: RTCRtpSender, stream_id: str) -> None:
    """Announce the sender's track in the stream `stream_id` (`a=msid:<stream_id> <track>`) in
    the connection's next descriptions."""
    sender._stream_id = stream_id


def media_ssrcs(receiver: RTCRtpReceiver) -> list[int]:
    """The SSRCs the receiver's remote end sends media on (not its retransmission SSRCs)."""
    retransmission: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
    sources = receiver.getSynchronizationSources()
    return [source.source for source in sources if source.source not in retransmission]


async def send_pli(receiver: RTCRtpReceiver) -> None:
    """Ask the receiver's remote end for a keyframe (RTCP PLI)."""
    for ssrc in media_ssrcs(receiver):
        await receiver._send_rtcp_pli(ssrc)


def missing_packets(receiver: RTCRtpReceiver) -> set[int]:
    """The sequence numbers the receiver has seen a gap for and not yet received (video)."""
    generator = receiver._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]
    return set() if generator is None else set(generator.missing)


async def send_nack(receiver: RTCRtpReceiver, lost: list[int]) -> None:
    """Ask the receiver's remote end again for the packets `lost`."""
    for ssrc in media_ssrcs(receiver):
        await receiver._send_rtcp_nack(ssrc, lost)


def give_up_on_missing(receiver: RTCRtpReceiver) -> None:
    """Stop waiting for the missing packets: forget them and empty the jitter buffer, so the
    frames after the gap flow again (until a keyframe, they reference a picture never seen)."""
    generator = receiver._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]
    if generator is not None:
        generator.missing.clear()
    jitter_buffer = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    jitter_buffer._packets = [None] * jitter_buffer.capacity
    # On from the packet after the newest seen: a late copy of a packet given up on is then
    # dropped as misordered, instead of becoming the origin with nothing after it until the
    # buffer overflows (seconds).
    newest = None if generator is None else generator.max_seq
    jitter_buffer._origin = None if newest is None else uint16_add(newest, 1)


def keep_codecs(transceiver: RTCRtpTransceiver, mime_type: str) -> bool:
    """Narrow the codecs negotiated from a remote offer to `mime_type` (and its
    retransmission), before the answer is created; False if the offer has none of it."""
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    if not codecs:  # not negotiated by this offer
        return True
    kept = [codec for codec in codecs if codec.mimeType.lower() == mime_type.lower()]
    payload_types = {codec.payloadType for codec in kept}
    kept += [
        codec for codec in codecs if is_rtx(codec) and codec.parameters.get("apt") in payload_types
    ]
    if not kept:
        return False
    transceiver._codecs = kept
    return True
