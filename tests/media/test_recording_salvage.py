"""A segment the hub was writing when it died is torn: salvage remuxes what is readable of it,
without re-encoding, and gives up only on a file with no whole frame."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import pytest

from media.recorder import ParticipantRecorder
from recordings.recovery import hold, release, salvage
from tests.media.test_recorder import FPS, Publisher, play, record_synthetic_call


def video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def test_a_torn_segment_keeps_every_whole_frame_before_the_tear(tmp_path: Path) -> None:
    first = record_synthetic_call(tmp_path)[0]
    whole = video_frames(first.path)
    torn = first.path.read_bytes()[: first.size_bytes * 6 // 10]  # the hub died mid-write
    first.path.write_bytes(torn)

    salvaged = salvage(first.path)

    assert salvaged is not None and salvaged.seq == first.seq == 0
    kept = video_frames(salvaged.path)
    assert whole * 0.4 < kept < whole, (kept, whole)
    assert salvaged.sha256 == hashlib.sha256(salvaged.path.read_bytes()).hexdigest()
    assert salvaged.size_bytes == salvaged.path.stat().st_size
    assert 0.4 * first.duration_s < salvaged.duration_s < first.duration_s
    with av.open(str(salvaged.path)) as container:
        assert {stream.codec_context.name for stream in container.streams} == {"vp8", "opus"}


def test_a_whole_segment_is_remuxed_unchanged_in_content(tmp_path: Path) -> None:
    first = record_synthetic_call(tmp_path)[0]
    whole = video_frames(first.path)
    salvaged = salvage(first.path)
    assert salvaged is not None and video_frames(salvaged.path) == whole
    assert abs(salvaged.duration_s - first.duration_s) < 0.1


def test_a_segment_torn_in_its_header_or_before_any_frame_is_left_out(tmp_path: Path) -> None:
    first = record_synthetic_call(tmp_path)[0]
    body = first.path.read_bytes()
    for size in (0, 40, 200):
        first.path.write_bytes(body[:size])
        assert salvage(first.path) is None, size
    assert not list(tmp_path.glob("*.salvaged"))


def test_a_recording_directory_is_held_by_one_holder_at_a_time(tmp_path: Path) -> None:
    directory = tmp_path / "recording"
    held = hold(directory)
    assert held is not None
    assert hold(directory) is None  # a second holder, even in this process, is refused
    release(held)
    again = hold(directory)
    assert again is not None
    release(again)


@pytest.mark.parametrize("microphone", [True, False], ids=["camera and microphone", "camera"])
def test_a_segment_never_closed_holds_all_but_its_last_second(
    tmp_path: Path, microphone: bool
) -> None:
    # As a hub killed mid-segment leaves it: the recorder never closes it, and nothing of it
    # but what reached the disk survives. Without audio, the muxer must not hold video back
    # waiting to interleave it.
    now = [0.0]
    publisher = Publisher()
    recorder = ParticipantRecorder(
        tmp_path,
        on_segment=lambda _: None,
        request_keyframe=publisher.request_keyframe,
        clock=lambda: now[0],
    )
    publisher.request_keyframe()
    play(recorder, publisher, now, 4, microphone=microphone)
    copy = tmp_path / "copy" / "000000.webm"
    copy.parent.mkdir()
    copy.write_bytes((tmp_path / "000000.webm").read_bytes())  # what the disk holds now

    salvaged = salvage(copy)

    assert salvaged is not None
    assert video_frames(salvaged.path) >= 2.5 * FPS
