"""What a replica hosting SFU rooms needs to record them: a RoomRecording per recording, its
segments written under one local directory and uploaded through one SegmentBuffer, and the
consult's live recording looked up when a room starts (a room may be pinned to this replica
after its recording began, e.g. once the replica that hosted it died)."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import cast
from uuid import UUID

import asyncpg

from domain.recordings import repository
from domain.recordings.lifecycle import RecordingState
from recordings.buffer import SegmentBuffer
from recordings.room import RoomRecording
from recordings.uploads import RecordingUploads

log = logging.getLogger(__name__)


class Studio:
    def __init__(
        self, pool: asyncpg.Pool, s3: object, bucket: str, directory: Path, max_buffer_bytes: int
    ) -> None:
        self._pool = pool
        self._uploads = RecordingUploads(pool, s3, bucket)
        self._directory = directory
        self._buffer = SegmentBuffer(
            self._uploads, max_bytes=max_buffer_bytes, on_pressure=_warn_pressure
        )
        self._uploader: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._uploader = asyncio.ensure_future(self._buffer.run())

    async def stop(self) -> None:
        if self._uploader is not None:
            self._uploader.cancel()
            await asyncio.gather(self._uploader, return_exceptions=True)

    def recording(self, recording_id: UUID) -> RoomRecording:
        """A new recording's media, written under its own directory."""
        directory = self._directory / str(recording_id)
        return RoomRecording(recording_id, directory, self._buffer, self._uploads)

    async def finished(self, recording: RoomRecording) -> None:
        """Stop `recording`, and remove its local files once S3 holds them."""
        await recording.stop()
        await asyncio.to_thread(
            shutil.rmtree, self._directory / str(recording.recording_id), ignore_errors=True
        )

    async def index(self, recording_id: UUID) -> None:
        """The manifest of a recording whose segments reached S3 from another replica (one that
        died recording it): no joined files, since its local segments died with it."""
        await self._uploads.finish(recording_id, {})

    async def live(self, consult_id: UUID) -> tuple[UUID, RecordingState] | None:
        """The consult's live recording (its id and state), if it has one."""
        async with self._pool.acquire() as proxy:
            current = await repository.live(cast(asyncpg.Connection, proxy), consult_id)
        return None if current is None else (current.id, current.state)


def _warn_pressure(waiting: int, limit: int) -> None:
    log.warning("recording segments waiting for S3: %d of %d bytes", waiting, limit)
