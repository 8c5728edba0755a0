"""Segments wait on local disk until S3 takes them: uploaded one at a time in the order they
closed, and while S3 is out of reach retried with exponential backoff (BACKOFF_S doubling up
to MAX_BACKOFF_S), never dropped. The buffer is bounded (`max_bytes` of segments waiting):
`on_pressure` is told when what waits passes NEAR_FULL of the limit and again when it falls
back under it (for the vet to be told), and a segment that would pass the limit is refused
with BufferFull, for the recording to fail visibly rather than lose media silently."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError

from media.recorder import Segment
from recordings.uploads import RecordingUploads

log = logging.getLogger(__name__)

BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
NEAR_FULL = 0.8


@dataclass(frozen=True)
class BufferPressure:
    near_full: bool  # what waits passed NEAR_FULL of the limit (False: it fell back under)
    waiting_bytes: int
    limit_bytes: int


class BufferFull(Exception):
    """The local buffer cannot take another segment while S3 is out of reach."""


@dataclass(frozen=True)
class _Waiting:
    recording_id: UUID
    user_id: UUID
    segment: Segment


class SegmentBuffer:
    def __init__(
        self,
        uploads: RecordingUploads,
        *,
        max_bytes: int,
        on_pressure: Callable[[BufferPressure], None],
        backoff_s: float = BACKOFF_S,
    ) -> None:
        self._uploads = uploads
        self._max_bytes = max_bytes
        self._on_pressure = on_pressure
        self._near_full = False
        self._backoff_s = backoff_s
        self._waiting: deque[_Waiting] = deque()
        self._bytes = 0
        self._arrived = asyncio.Event()
        self._emptied = asyncio.Event()
        self._emptied.set()
        self._freed = asyncio.Event()  # a segment left for S3

    @property
    def waiting_bytes(self) -> int:
        return self._bytes

    def put(self, recording_id: UUID, user_id: UUID, segment: Segment) -> None:
        if self._bytes + segment.size_bytes > self._max_bytes:
            raise BufferFull(f"{self._bytes} bytes of segments already wait for S3")
        self._waiting.append(_Waiting(recording_id, user_id, segment))
        self._bytes += segment.size_bytes
        self._emptied.clear()
        self._arrived.set()
        self._tell_pressure()

    async def put_when_room(self, recording_id: UUID, user_id: UUID, segment: Segment) -> None:
        """As `put`, waiting while the buffer is too full to take the segment."""
        if segment.size_bytes > self._max_bytes:
            raise BufferFull(f"a segment of {segment.size_bytes} bytes outgrows the buffer")
        while self._bytes + segment.size_bytes > self._max_bytes:
            self._freed.clear()
            await self._freed.wait()
        self.put(recording_id, user_id, segment)

    async def drained(self) -> None:
        """Until every segment put so far is in S3."""
        await self._emptied.wait()

    async def run(self) -> None:
        """Upload what waits, for as long as the task runs."""
        while True:
            if not self._waiting:
                self._emptied.set()
                self._arrived.clear()
                await self._arrived.wait()
                continue
            head = self._waiting[0]
            await self._upload(head)
            self._waiting.popleft()
            self._bytes -= head.segment.size_bytes  # its file stays, for the join on stop
            self._freed.set()
            self._tell_pressure()

    def _tell_pressure(self) -> None:
        near_full = self._bytes >= NEAR_FULL * self._max_bytes
        if near_full != self._near_full:
            self._near_full = near_full
            self._on_pressure(BufferPressure(near_full, self._bytes, self._max_bytes))

    async def _upload(self, waiting: _Waiting) -> None:
        delay = self._backoff_s
        while True:
            try:
                await self._uploads.upload_segment(
                    waiting.recording_id, waiting.user_id, waiting.segment
                )
                return
            except (BotoCoreError, ClientError, OSError) as exc:
                log.warning("S3 did not take a segment (retry in %.1f s): %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
