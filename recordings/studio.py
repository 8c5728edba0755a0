"""What a replica hosting SFU rooms needs to record them: a RoomRecording per recording, its
segments written under one local directory and uploaded through one SegmentBuffer, and the
consult's live recording looked up when a room starts (a room may be pinned to this replica
after its recording began, e.g. once the replica that hosted it died). When segments pile up
for want of S3, the listener set with `on_pressure` hears of it (the hub tells the vets). Each
recording's directory is held (recordings.recovery.hold) while it records; at start, what a
hub that died mid-recording left in directories nobody holds is recovered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar, cast
from uuid import UUID

import asyncpg

from domain.recordings import repository
from domain.recordings.lifecycle import RecordingState
from recordings.buffer import BufferPressure, SegmentBuffer
from recordings.recovery import Recovery, hold, release
from recordings.room import RoomRecording
from recordings.uploads import RecordingUploads

log = logging.getLogger(__name__)


class Take(Protocol):
    """A take of a recording's media: written by the hub's recorders (recordings.room) or by
    Janus (recordings.janus_take)."""

    recording_id: UUID
    take: int

    async def stop(self) -> None: ...


T = TypeVar("T", bound=Take)


class Studio:
    def __init__(
        self, pool: asyncpg.Pool, s3: object, bucket: str, directory: Path, max_buffer_bytes: int
    ) -> None:
        self._pool = pool
        self._uploads = RecordingUploads(pool, s3, bucket)
        self._directory = directory
        self._buffer = SegmentBuffer(
            self._uploads, max_bytes=max_buffer_bytes, on_pressure=self._pressure
        )
        self._recovery = Recovery(pool, self._uploads, self._buffer, directory)
        self._tasks: list[asyncio.Task[None]] = []
        self._held: dict[Take, int] = {}  # a take -> the lock on its directory
        self._pressure_listener: Callable[[BufferPressure], None] | None = None

    def on_pressure(self, listener: Callable[[BufferPressure], None]) -> None:
        self._pressure_listener = listener

    def _pressure(self, pressure: BufferPressure) -> None:
        log.warning(
            "recording segments waiting for S3: %d of %d bytes%s",
            pressure.waiting_bytes,
            pressure.limit_bytes,
            "" if pressure.near_full else " (back under the warning level)",
        )
        if self._pressure_listener is not None:
            self._pressure_listener(pressure)

    def start(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._buffer.run()),
            asyncio.ensure_future(self._recovery.run()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for fd in self._held.values():
            release(fd)
        self._held.clear()

    async def recording(self, recording_id: UUID) -> RoomRecording:
        """A new take of a recording's media by the hub's recorders."""
        return await self.take(recording_id, RoomRecording)

    async def take(
        self,
        recording_id: UUID,
        make: Callable[[UUID, int, Path, SegmentBuffer, RecordingUploads], T],
    ) -> T:
        """A new take of a recording's media, made by `make` (from the recording, the take's
        number and directory, the buffer and the uploads), written under its own directory
        (held while it records: see recordings.recovery)."""
        take = await repository.next_take(self._pool, recording_id)
        directory = self._directory / str(recording_id) / str(take)
        fd = hold(directory)
        assert fd is not None, "a new take's directory is nobody's"
        recording = make(recording_id, take, directory, self._buffer, self._uploads)
        self._held[recording] = fd
        return recording

    async def finished(self, recording: Take) -> None:
        """Stop `recording`, and remove its local files once S3 holds them."""
        await recording.stop()
        recording_dir = self._directory / str(recording.recording_id)
        await asyncio.to_thread(shutil.rmtree, recording_dir / str(recording.take))
        with contextlib.suppress(OSError):  # other takes of it may still be on disk
            recording_dir.rmdir()
        release(self._held.pop(recording))

    async def index(self, recording_id: UUID) -> None:
        """The manifest of a recording whose segments reached S3 from another replica (one that
        died recording it): no joined files, since its local segments died with it."""
        await self._uploads.finish(recording_id, 0, {})

    async def live(self, consult_id: UUID) -> tuple[UUID, RecordingState] | None:
        """The consult's live recording (its id and state), if it has one."""
        async with self._pool.acquire() as proxy:
            current = await repository.live(cast(asyncpg.Connection, proxy), consult_id)
        return None if current is None else (current.id, current.state)
