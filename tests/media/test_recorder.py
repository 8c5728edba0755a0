"""The recorder's muxer: VP8 and Opus frames, encoded here as a publisher would, muxed into
WebM segments and joined without re-encoding; PyAV opens every file, finds VP8 and Opus,
decodes every frame, and the timeline is the time recorded minus the pause."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TypeAlias

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.stream import Stream
from av.video.frame import PictureType

from media.recorder import SEGMENT_S, ParticipantRecorder, Segment, join_segments

FPS = 30
Packet: TypeAlias = "av.Packet[Stream]"  # PyAV has it generic only in its stubs
AUDIO_FRAME_S = 0.02
RECORDED_S = 20.0  # 25 s of call with a 5 s pause from 10 s


class Publisher:
    """Encodes a synthetic camera and microphone (VP8 at 320x240, Opus), as a browser would;
    a keyframe request makes its next video frame a keyframe, as a PLI does."""

    def __init__(self) -> None:
        self.video = av.CodecContext.create("libvpx", "w")
        self.video.width, self.video.height = 320, 240
        self.video.pix_fmt = "yuv420p"
        self.video.time_base = Fraction(1, 90000)
        self.video.framerate = Fraction(FPS)
        self.video.gop_size = 1000  # keyframes only when asked, as in a call
        self.video.options = {"keyint_min": "1000"}  # nor where libvpx deems one cheaper
        self.audio = av.CodecContext.create("libopus", "w")
        self.audio.sample_rate = 48000
        self.audio.layout = "stereo"
        self.audio.format = "s16"
        self.audio.time_base = Fraction(1, 48000)
        self.keyframe_wanted = False

    def request_keyframe(self) -> None:
        self.keyframe_wanted = True

    def video_frame(self, index: int) -> list[Packet]:
        pixels = np.full((240, 320, 3), index % 256, np.uint8)
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = index * 3000, Fraction(1, 90000)
        if self.keyframe_wanted:
            frame.pict_type, self.keyframe_wanted = PictureType.I, False
        return [rtp_like(packet, 90000) for packet in self.video.encode(frame)]

    def audio_frame(self, index: int) -> list[Packet]:
        frame = AudioFrame.from_ndarray(
            np.zeros((1, 1920), np.int16), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts, frame.time_base = 48000, index * 960, Fraction(1, 48000)
        return [rtp_like(packet, 48000) for packet in self.audio.encode(frame)]


def rtp_like(packet: Packet, clock_rate: int) -> Packet:
    """The packet as the SFU hands it over: bytes, pts in the RTP clock, nothing else."""
    assert packet.pts is not None
    forwarded: Packet = av.Packet(bytes(packet))
    forwarded.pts = max(packet.pts, 0) * clock_rate // int(1 / packet.time_base)
    forwarded.time_base = Fraction(1, clock_rate)
    return forwarded


def play(
    recorder: ParticipantRecorder,
    publisher: Publisher,
    now: list[float],
    seconds: float,
    *,
    microphone: bool = True,
    pause: tuple[float, float] | None = None,
) -> None:
    """Feed `recorder` `seconds` of the publisher's call in 1 ms steps of the clock `now`,
    paused from `pause[0]` to `pause[1]`."""
    video_index = audio_index = 0
    for step in range(round(seconds * 1000)):
        now[0] = step / 1000
        if pause is not None and pause[0] <= now[0] < pause[1] and not recorder.paused:
            recorder.pause()
        if pause is not None and now[0] >= pause[1] and recorder.paused:
            recorder.resume()
        if microphone and step % 20 == 0:
            for packet in publisher.audio_frame(audio_index):
                recorder.write("audio", packet)
            audio_index += 1
        if step * FPS % 1000 < FPS:
            for packet in publisher.video_frame(video_index):
                recorder.write("video", packet)
            video_index += 1


def record_synthetic_call(
    directory: Path, pause: tuple[float, float] | None = (10, 15)
) -> list[Segment]:
    """25 s of a publisher's call, paused from 10 s to 15 s (or `pause`); the segments."""
    now = [0.0]
    segments: list[Segment] = []
    publisher = Publisher()
    publisher.request_keyframe()
    recorder = ParticipantRecorder(
        directory,
        on_segment=segments.append,
        request_keyframe=publisher.request_keyframe,
        clock=lambda: now[0],
    )
    play(recorder, publisher, now, 25, pause=pause)
    recorder.close()
    return segments


def test_segments_and_the_joined_file_hold_vp8_and_opus_without_the_pause(tmp_path: Path) -> None:
    segments = record_synthetic_call(tmp_path)
    assert len(segments) >= 2
    assert [segment.seq for segment in segments] == list(range(len(segments)))
    decoded_video = 0
    for segment in segments:
        with av.open(str(segment.path)) as container:
            kinds = {stream.type: stream.codec_context.name for stream in container.streams}
            assert kinds == {"video": "vp8", "audio": "opus"}
            frames = list(container.decode(video=0))
            assert frames and frames[0].key_frame, "a segment starts on a keyframe"
            decoded_video += len(frames)
    # Nothing from the 5 s pause: 20 s of frames at 30 fps, give or take the resume's first.
    assert abs(decoded_video - RECORDED_S * FPS) <= 2, decoded_video
    assert abs(sum(segment.duration_s for segment in segments) - RECORDED_S) < 0.2 * RECORDED_S

    joined = tmp_path / "joined.webm"
    join_segments([segment.path for segment in segments], joined)
    with av.open(str(joined)) as container:
        assert {s.type: s.codec_context.name for s in container.streams} == {
            "video": "vp8",
            "audio": "opus",
        }
        assert container.duration is not None
        assert abs(container.duration / 1_000_000 - RECORDED_S) < 0.2 * RECORDED_S
        assert sum(1 for _ in container.decode(video=0)) == decoded_video
        container.seek(0)
        assert sum(1 for _ in container.decode(audio=0)) > 0.8 * RECORDED_S / 0.02


def test_a_long_stretch_is_cut_into_segments_of_about_ten_seconds(tmp_path: Path) -> None:
    # The publisher sends keyframes only when asked: the recorder asks once a segment is due.
    segments = record_synthetic_call(tmp_path, pause=None)
    assert [round(segment.start_s) for segment in segments] == [0, 10, 20]
    for segment in segments[:-1]:
        assert SEGMENT_S <= segment.duration_s < SEGMENT_S + 0.2, segment
