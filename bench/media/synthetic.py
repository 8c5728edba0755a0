"""A synthetic camera for media tests and benchmarks: no device, no file, real frames.

Each frame's top half is a flat luma level that identifies the sender (it survives VP8
encoding within a few steps); its bottom half is a white bar moving across black, so that
consecutive frames differ and the encoder does real work.
"""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
from aiortc import VideoStreamTrack

_CLOCK_RATE = 90_000
_BAR_WIDTH = 32
_BAR_STEP = 8


class ColorBarTrack(VideoStreamTrack):
    """A live video track of `width` x `height` at `fps`, identified by `luma` (16-235)."""

    def __init__(self, luma: int, *, width: int = 320, height: int = 240, fps: int = 15) -> None:
        super().__init__()
        if not 16 <= luma <= 235:
            raise ValueError("luma must be in the video range 16-235")
        self.luma = luma
        self._width = width
        self._height = height
        self._fps = fps
        self._sent = 0
        self._started_at: float | None = None

    async def recv(self) -> av.VideoFrame:
        await self._wait_for_next_frame()
        return self.next_frame()

    def next_frame(self) -> av.VideoFrame:
        """The next frame, now (recv paces these at `fps`)."""
        frame = av.VideoFrame(self._width, self._height, "yuv420p")
        frame.planes[0].update(self._luma_plane())
        chroma = bytes([128]) * (self._width // 2 * self._height // 2)
        frame.planes[1].update(chroma)
        frame.planes[2].update(chroma)
        frame.pts = self._sent * _CLOCK_RATE // self._fps
        frame.time_base = Fraction(1, _CLOCK_RATE)
        self._sent += 1
        return frame

    async def _wait_for_next_frame(self) -> None:
        now = time.monotonic()
        if self._started_at is None:
            self._started_at = now
            return
        await asyncio.sleep(max(0.0, self._started_at + self._sent / self._fps - now))

    def _luma_plane(self) -> bytes:
        band_rows = self._height // 2
        bar_at = (self._sent * _BAR_STEP) % (self._width - _BAR_WIDTH)
        bar_row = bytes(
            235 if bar_at <= x < bar_at + _BAR_WIDTH else 16 for x in range(self._width)
        )
        return bytes([self.luma]) * (self._width * band_rows) + bar_row * (self._height - band_rows)


def sender_luma(frame: av.VideoFrame) -> int:
    """The identifying luma of a decoded ColorBarTrack frame (mean of its band's middle row)."""
    plane = frame.planes[0]
    row = frame.height // 4
    start = row * plane.line_size
    pixels = bytes(plane)[start : start + frame.width]
    return round(sum(pixels) / len(pixels))
