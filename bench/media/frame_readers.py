"""Reading what a peer receives: one task per remote track hands each decoded frame to a
callback until the track ends or the readers are closed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

OnFrame = Callable[[MediaStreamTrack, AudioFrame | VideoFrame], None]


class FrameReaders:
    def __init__(self, on_frame: OnFrame) -> None:
        self._on_frame = on_frame
        self._tasks: list[asyncio.Task[None]] = []

    def read(self, track: MediaStreamTrack) -> None:
        """Start reading `track` (a peer connection's "track" handler)."""
        self._tasks.append(asyncio.ensure_future(self._each_frame(track)))

    async def _each_frame(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, AudioFrame | VideoFrame)
                self._on_frame(track, frame)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
