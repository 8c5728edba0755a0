"""The media of one take of a live recording of an SFU room, on the replica hosting the room.
A recording is recorded in several takes when its room closes and starts again while it stays
live; take n numbers its segments from n * SEGMENTS_PER_TAKE, so takes never collide.

Each participant's published tracks are tapped (media.forwarding.Publication.add_sink) into
that participant's own ParticipantRecorder, so nothing is decoded or encoded. Closed segments
go to the SegmentBuffer, and so to S3 as they close. Pausing and resuming follow the
recording's state (a pause is when someone in the call has not consented: nothing is written
meanwhile). On stop every recorder closes, the buffer drains, and RecordingUploads.finish
joins each participant's segments and writes the manifest.

A recorder that fails (a frame PyAV cannot mux) is cut off with one log line rather than
disturb the forwarding it taps; its segments so far are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

from av import Packet
from av.stream import Stream

from media.forwarding import Publication
from media.recorder import ParticipantRecorder, Segment
from recordings.buffer import BufferFull, SegmentBuffer
from recordings.uploads import RecordingUploads

log = logging.getLogger(__name__)

SEGMENTS_PER_TAKE = 10_000  # 10 s each: a take of up to 27 hours


class RoomRecording:
    def __init__(
        self,
        recording_id: UUID,
        take: int,
        directory: Path,
        buffer: SegmentBuffer,
        uploads: RecordingUploads,
    ) -> None:
        self.recording_id = recording_id
        self.take = take
        self._directory = directory
        self._buffer = buffer
        self._uploads = uploads
        self._recorders: dict[UUID, ParticipantRecorder] = {}
        self._segments: dict[UUID, list[Segment]] = {}
        self._video: dict[UUID, Publication] = {}  # for keyframe requests
        self._untaps: dict[UUID, list[Callable[[], None]]] = {}
        self._paused = False

    def tap(self, user_id: UUID, publication: Publication) -> None:
        """Record one of a participant's published tracks from now on."""
        recorder = self._recorder(user_id)
        recorder.new_track(publication.kind)
        if publication.kind == "video":
            self._video[user_id] = publication

        def write(packet: Packet[Stream]) -> None:
            try:
                recorder.write(publication.kind, packet)
            except Exception:
                log.exception("recording %s: %s's recorder failed", self.recording_id, user_id)
                self._cut_off(user_id)

        self._untaps.setdefault(user_id, []).append(publication.add_sink(write))

    def pause(self) -> None:
        self._paused = True
        for recorder in self._recorders.values():
            recorder.pause()

    def resume(self) -> None:
        self._paused = False
        for recorder in self._recorders.values():
            recorder.resume()

    async def stop(self) -> None:
        """Close every recorder, wait until S3 holds every segment, then join and index them."""
        for user_id in list(self._untaps):
            self._cut_off(user_id)
        await self._buffer.drained()
        await self._uploads.finish(self.recording_id, self.take, self._segments)

    def _recorder(self, user_id: UUID) -> ParticipantRecorder:
        recorder = self._recorders.get(user_id)
        if recorder is None:
            directory = self._directory / str(user_id)
            directory.mkdir(parents=True, exist_ok=True)
            recorder = self._recorders[user_id] = ParticipantRecorder(
                directory,
                on_segment=lambda segment: self._closed(user_id, segment),
                request_keyframe=lambda: self._ask_keyframe(user_id),
                first_seq=self.take * SEGMENTS_PER_TAKE,
            )
            self._segments[user_id] = []
            if self._paused:
                recorder.pause()
        return recorder

    def _closed(self, user_id: UUID, segment: Segment) -> None:
        self._segments[user_id].append(segment)
        try:
            self._buffer.put(self.recording_id, user_id, segment)
        except BufferFull:
            log.error(
                "recording %s: segment %d of %s dropped, S3 is out of reach and the buffer full",
                self.recording_id,
                segment.seq,
                user_id,
            )
            self._segments[user_id].remove(segment)

    def _ask_keyframe(self, user_id: UUID) -> None:
        video = self._video.get(user_id)
        if video is not None:
            video.request_keyframe()

    def _cut_off(self, user_id: UUID) -> None:
        for untap in self._untaps.pop(user_id, []):
            untap()
        recorder = self._recorders.get(user_id)
        if recorder is not None:
            recorder.close()
