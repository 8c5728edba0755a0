"""The SFU's frame assembly held to aiortc's own JitterBuffer, fed the same packets.

Video (media._aiortc.FrameAtMarkerBuffer): in order or not, with losses and duplicates, it
hands on every frame aiortc's would, in the same order, never later, and only whole frames; a
frame whose last packet arrived is handed on then, not a frame interval later. Audio
(PacketAtOnceBuffer): each packet as it arrives, where aiortc's holds four back; a packet
arriving after a newer one was handed on is dropped, so what is handed on is always in order."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

from media._aiortc import FrameAtMarkerBuffer, PacketAtOnceBuffer

CAPACITY = 512  # aiortc's for video


@dataclass(frozen=True)
class Sent:
    packet: RtpPacket
    frame: int


def frames_of_packets(sizes: list[int], first_seq: int) -> tuple[list[Sent], dict[int, bytes]]:
    """Frames of `sizes` packets each, 3000 timestamp units apart (30 fps), the last packet of
    each marked; and each frame's whole data, by timestamp."""
    sent: list[Sent] = []
    whole: dict[int, bytes] = {}
    seq = first_seq
    for frame, size in enumerate(sizes):
        timestamp = (1000 + frame * 3000) % 2**32
        parts = [f"f{frame}p{part};".encode() for part in range(size)]
        whole[timestamp] = b"".join(parts)
        for part, data in enumerate(parts):
            packet = RtpPacket(
                payload_type=96,
                marker=int(part == size - 1),
                sequence_number=seq,
                timestamp=timestamp,
            )
            packet._data = data  # type: ignore[attr-defined]  # what the receiver depayloads
            sent.append(Sent(packet, frame))
            seq = uint16_add(seq, 1)
    return sent, whole


def feed(buffer: JitterBuffer, arrivals: list[RtpPacket]) -> list[tuple[int, int, bytes]]:
    """(arrival index, timestamp, data) of each frame the buffer hands on: what `add` returns,
    then, from the room's video buffer, what else that packet completed (as the tap takes)."""
    out = []
    for index, packet in enumerate(arrivals):
        _, frame = buffer.add(packet)
        if frame is None:
            continue
        out.append((index, frame.timestamp, frame.data))
        if isinstance(buffer, FrameAtMarkerBuffer):
            out += [(index, f.timestamp, f.data) for f in buffer.complete_frames(lambda t: t)]
    return out


def test_a_frame_is_handed_on_at_its_last_packet_not_at_the_next_frame() -> None:
    sent, _ = frames_of_packets([3, 1, 2], first_seq=10)
    arrivals = [s.packet for s in sent]
    ours = feed(FrameAtMarkerBuffer(CAPACITY, lambda: None), arrivals)
    theirs = feed(JitterBuffer(CAPACITY, is_video=True), arrivals)
    assert [index for index, _, _ in ours] == [2, 3, 5]  # each frame's marked packet
    assert [index for index, _, _ in theirs] == [3, 4]  # the next frame's first packet
    assert [data for _, _, data in ours][:2] == [data for _, _, data in theirs]


def test_a_frame_missing_a_packet_waits_for_it() -> None:
    sent, whole = frames_of_packets([3, 2], first_seq=65534)  # across the wrap of seq
    first, middle, last, *rest = [s.packet for s in sent]
    ours = feed(FrameAtMarkerBuffer(CAPACITY, lambda: None), [first, last, *rest, middle])
    # Nothing before the middle packet (the marked one came, but after a gap); then both.
    assert [(index, data) for index, _, data in ours] == [
        (4, whole[first.timestamp]),
        (4, whole[rest[0].timestamp]),
    ]


def test_a_late_packet_hands_on_every_frame_it_completes() -> None:
    sent, whole = frames_of_packets([1, 1, 1, 1, 1], first_seq=1)
    a, b, c, d, e = [s.packet for s in sent]
    ours = feed(FrameAtMarkerBuffer(CAPACITY, lambda: None), [a, c, b, d, e])
    assert [(index, data) for index, _, data in ours] == [
        (0, whole[a.timestamp]),
        (2, whole[b.timestamp]),
        (2, whole[c.timestamp]),  # not a frame interval later, at d
        (3, whole[d.timestamp]),
        (4, whole[e.timestamp]),
    ]


def test_padding_after_a_frame_is_never_handed_on_as_a_frame() -> None:
    """libwebrtc pads on the media stream (without RTX) right after a frame's marked packet,
    with that frame's timestamp and no payload."""
    sent, whole = frames_of_packets([3, 2], first_seq=65534)
    first, second = sent[:3], sent[3:]
    padding = RtpPacket(payload_type=96, timestamp=first[0].packet.timestamp)
    padding._data = b""  # type: ignore[attr-defined]
    arrivals = [s.packet for s in first] + [padding] + [s.packet for s in second]
    for index, packet in enumerate(arrivals):
        packet.sequence_number = uint16_add(65534, index)
    ours = feed(FrameAtMarkerBuffer(CAPACITY, lambda: None), arrivals)
    assert [(index, data) for index, _, data in ours] == [
        (2, whole[first[0].packet.timestamp]),
        (5, whole[second[0].packet.timestamp]),
    ]


@pytest.mark.parametrize("seed", range(40))
def test_it_hands_on_what_aiortc_does_never_later_and_only_whole_frames(seed: int) -> None:
    rng = random.Random(seed)
    sizes = [rng.choice([1, 1, 2, 3, 5, 8]) for _ in range(60)]
    sent, whole = frames_of_packets(sizes, first_seq=rng.randrange(2**16))
    arrivals = [s.packet for s in sent]
    for position in range(len(sent) - 1, 0, -1):  # the first stays first: a stream's start
        roll = rng.random()
        if roll < 0.08:  # late, as a retransmission after a NACK is
            packet = arrivals.pop(position)
            arrivals.insert(min(len(arrivals), position + rng.randrange(2, 20)), packet)
        elif roll < 0.11:
            arrivals.insert(position, arrivals[position])  # duplicated
        elif roll < 0.2 and position > 1:
            arrivals[position], arrivals[position - 1] = arrivals[position - 1], arrivals[position]
    if seed % 4 == 0:
        del arrivals[-len(arrivals) // 3]  # and one lost for good: both stop there

    ours = feed(FrameAtMarkerBuffer(CAPACITY, lambda: None), arrivals)
    theirs = feed(JitterBuffer(CAPACITY, is_video=True), arrivals)

    assert all(data == whole[timestamp] for _, timestamp, data in ours), "a partial frame"
    assert all(data == whole[timestamp] for _, timestamp, data in theirs)
    handed_at = {timestamp: index for index, timestamp, _ in ours}
    for index, timestamp, _ in theirs:
        assert timestamp in handed_at, f"frame {timestamp} never handed on"
        assert handed_at[timestamp] <= index
    # The same frames in the same order; ours may add those aiortc's still holds at the end
    # (the last, whose next frame never came, and those it fell behind on: one per packet).
    assert [t for _, t, _ in ours][: len(theirs)] == [t for _, t, _ in theirs]
    assert len(theirs) > 10 or seed % 4 == 0


def audio_packets(count: int, first_seq: int) -> list[RtpPacket]:
    """20 ms Opus packets (960 samples at 48 kHz), each a whole frame."""
    packets = []
    for index in range(count):
        packet = RtpPacket(
            payload_type=111,
            sequence_number=uint16_add(first_seq, index),
            timestamp=(index * 960) % 2**32,
        )
        packet._data = f"a{index};".encode()  # type: ignore[attr-defined]
        packets.append(packet)
    return packets


def test_audio_is_handed_on_as_it_arrives_where_aiortc_holds_four_packets() -> None:
    packets = audio_packets(50, first_seq=65520)  # across the wrap of seq
    ours = feed(PacketAtOnceBuffer(16), packets)
    theirs = feed(JitterBuffer(16, prefetch=4), packets)
    assert [index for index, _, _ in ours] == list(range(50))
    assert [index for index, _, _ in theirs] == list(range(4, 50))  # 80 ms later each
    assert [data for _, _, data in ours][:46] == [data for _, _, data in theirs]


@pytest.mark.parametrize("seed", range(20))
def test_audio_handed_on_is_in_order_without_repeats(seed: int) -> None:
    rng = random.Random(seed)
    arrivals = audio_packets(200, first_seq=rng.randrange(2**16))
    for position in range(len(arrivals) - 1, 0, -1):
        roll = rng.random()
        if roll < 0.05:
            del arrivals[position]
        elif roll < 0.1:
            arrivals.insert(position, arrivals[position])
        elif roll < 0.2:
            arrivals[position], arrivals[position - 1] = arrivals[position - 1], arrivals[position]
    ours = feed(PacketAtOnceBuffer(16), arrivals)
    timestamps = [timestamp for _, timestamp, _ in ours]
    assert timestamps == sorted(set(timestamps))  # in order, none twice
    newest = -1
    handed = {index for index, _, _ in ours}
    for index, packet in enumerate(arrivals):  # a packet newer than all before it goes at once
        if packet.timestamp > newest:
            assert index in handed
            newest = packet.timestamp


def test_audio_from_a_restarted_sender_is_handed_on() -> None:
    """A jump back past MAX_MISORDER is a new start (aiortc's buffer resets there too), not a
    late packet: the new numbering is handed on at once."""
    before, after = audio_packets(10, first_seq=5000), audio_packets(10, first_seq=3000)
    ours = feed(PacketAtOnceBuffer(16), before + after)
    assert [index for index, _, _ in ours] == list(range(20))


def test_packets_aiortc_drops_are_reported_before_the_frame_after_them() -> None:
    # A jump past the buffer's capacity (packets lost for good): aiortc drops what it held and
    # says so; the room is told before the frame the arriving packet completed is handed on.
    sent, _ = frames_of_packets([1] * 40, first_seq=100)
    gaps: list[int] = []
    buffer = FrameAtMarkerBuffer(16, on_gap=lambda: gaps.append(len(handed)))
    reference = JitterBuffer(16, is_video=True)
    handed: list[int] = []
    arrivals = [s.packet for s in sent[:5]] + [sent[30].packet]  # 25 lost: past 16
    arrivals += [s.packet for s in sent[31:33]]
    for packet in arrivals:
        dropped, frame = buffer.add(packet)
        assert dropped == reference.add(packet)[0]
        if frame is not None:
            handed.append(packet.sequence_number)
    assert len(gaps) == 1, gaps
    assert gaps[0] == 5  # told after the five frames before the loss, before any after it
    assert handed[5:] == [
        sent[30].packet.sequence_number,
        *[s.packet.sequence_number for s in sent[31:33]],
    ]
