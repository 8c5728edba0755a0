"""The aiortc internals media._aiortc reaches into are where it expects them: an aiortc
upgrade that moves one fails here, not silently in a consult."""

from __future__ import annotations

import inspect
import queue
from typing import Any

import aiortc
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from media import _aiortc


def private(receiver: RTCRtpReceiver, name: str) -> Any:
    """A receiver's name-mangled private attribute."""
    return getattr(receiver, f"_RTCRtpReceiver__{name}")


def test_the_pinned_aiortc_series_is_installed() -> None:
    assert aiortc.__version__.startswith(_aiortc.AIORTC_SERIES)


async def test_receivers_hand_encoded_frames_to_a_decoder_queue_and_track_losses() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video").receiver
        assert isinstance(private(receiver, "decoder_queue"), queue.Queue)
        assert "self.__decoder_queue.put((codec, encoded_frame))" in inspect.getsource(
            RTCRtpReceiver._handle_rtp_packet
        )
        assert private(receiver, "nack_generator").missing == set()
        jitter_buffer = private(receiver, "jitter_buffer")
        assert len(jitter_buffer._packets) == jitter_buffer.capacity
        assert jitter_buffer._origin is None
        assert private(receiver, "rtx_ssrc") == {}
        assert _aiortc.media_ssrcs(receiver) == []
        assert inspect.iscoroutinefunction(receiver._send_rtcp_pli)
        assert inspect.iscoroutinefunction(receiver._send_rtcp_nack)

        original = private(receiver, "decoder_queue")
        frames: list[tuple[object, object]] = []
        ended: list[bool] = []
        _aiortc.tap_encoded_frames(
            receiver,
            lambda codec, frame: frames.append((codec, frame)),
            lambda: ended.append(True),
            lambda: None,
        )
        # Video frames are assembled by the room's own buffer, handed on at their last packet.
        assert isinstance(private(receiver, "jitter_buffer"), _aiortc.FrameAtMarkerBuffer)
        assert "self._remove_frame(packet.sequence_number)" in inspect.getsource(JitterBuffer.add)
        # What `add` reports as dropped is what the receiver answers with a PLI.
        assert "pli_flag, encoded_frame = self.__jitter_buffer.add(packet)" in inspect.getsource(
            RTCRtpReceiver._handle_rtp_packet
        )
        assert jitter_buffer._is_video
        jitter_buffer = private(receiver, "jitter_buffer")
        private(receiver, "decoder_queue").put(("codec", "frame"))
        assert frames == [("codec", "frame")] and original.empty()
        # A frame the receiver hands over is followed by any other its packet completed, with
        # the timestamp mapped by the receiver's mapper (which starts at 0).
        assert inspect.getsource(RTCRtpReceiver._handle_rtp_packet).count("timestamp_mapper")
        handed_over = []
        for sequence_number in (1, 3, 2):  # three one-packet frames, the second late
            packet = RtpPacket(96, marker=1, sequence_number=sequence_number)
            packet.timestamp = 3000 * sequence_number
            packet._data = b"%d" % sequence_number  # type: ignore[attr-defined]
            handed_over.append(jitter_buffer.add(packet)[1])
        assert handed_over[1] is None and handed_over[2].data == b"2"
        frames.clear()
        private(receiver, "decoder_queue").put(("codec", handed_over[2]))
        assert [getattr(frame, "data", None) for _, frame in frames] == [b"2", b"3"]
        assert getattr(frames[1][1], "timestamp", None) == 0
        private(receiver, "decoder_queue").put(None)  # how a receiver stops its decoder
        assert ended == [True] and original.get_nowait() is None
        packet = RtpPacket(payload_type=96, sequence_number=4, timestamp=0)  # no marker: kept
        packet._data = b"part"  # type: ignore[attr-defined]
        jitter_buffer.add(packet)
        private(receiver, "nack_generator").add(packet)
        assert jitter_buffer._origin == 4 and any(jitter_buffer._packets)
        _aiortc.give_up_on_missing(receiver)
        assert jitter_buffer._origin == 5 and not any(jitter_buffer._packets)
        assert jitter_buffer.add(packet) == (False, None)  # a late copy: dropped
        assert jitter_buffer._origin == 5
    finally:
        await pc.close()


async def test_an_audio_receiver_hands_each_packet_on() -> None:
    handling = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__jitter_buffer.add(packet)" in handling
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("audio").receiver
        assert not private(receiver, "jitter_buffer")._is_video
        _aiortc.tap_encoded_frames(receiver, lambda codec, frame: None, lambda: None, lambda: None)
        assert isinstance(private(receiver, "jitter_buffer"), _aiortc.PacketAtOnceBuffer)
    finally:
        await pc.close()


async def test_senders_route_keyframe_requests_through_send_keyframe() -> None:
    assert "self._send_keyframe()" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("video")
        requests: list[bool] = []
        _aiortc.on_keyframe_request(transceiver.sender, lambda: requests.append(True))
        transceiver.sender._send_keyframe()
        assert requests == [True]
        assert transceiver._codecs == []
        assert _aiortc.keep_codecs(transceiver, "video/VP8")  # nothing negotiated yet
    finally:
        await pc.close()


async def test_a_sender_s_stream_id_is_the_msid_of_its_m_line() -> None:
    pc = RTCPeerConnection()
    try:
        named, unnamed = pc.addTransceiver("video"), pc.addTransceiver("audio")
        assert named.sender._stream_id == unnamed.sender._stream_id  # one per connection
        _aiortc.name_stream(named.sender, "the-publisher")
        await pc.setLocalDescription(await pc.createOffer())
        msids = [
            line.removeprefix("a=msid:").split()
            for line in pc.localDescription.sdp.splitlines()
            if line.startswith("a=msid:")
        ]
        assert [stream for stream, _track in msids] == ["the-publisher", unnamed.sender._stream_id]
        assert msids[0][1] == named.sender._track_id
    finally:
        await pc.close()
