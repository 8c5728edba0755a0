"""A synthetic camera for media tests and benchmarks: no device, no file, real frames.

Each frame's top half is a flat luma level that identifies the sender (it survives VP8
encoding within a few steps); its bottom half is a white bar moving across black, so that
consecutive frames differ and the encoder does real work. Its bottom eighth shows the frame's
number, in COUNTER_BITS black or white blocks (most significant first), so a receiver can tell
which frame it decoded (`frame_number`) and how long it took to come through.
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
COUNTER_BITS = 16


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
        counter_rows = self._height // 8
        return (
            bytes([self.luma]) * (self._width * band_rows)
            + bar_row * (self._height - band_rows - counter_rows)
            + self._counter_row() * counter_rows
        )

    def _counter_row(self) -> bytes:
        block = self._width // COUNTER_BITS
        number = self._sent % (1 << COUNTER_BITS)
        bits = [(number >> (COUNTER_BITS - 1 - index)) & 1 for index in range(COUNTER_BITS)]
        row = b"".join(bytes([235 if bit else 16]) * block for bit in bits)
        return row + bytes([16]) * (self._width - len(row))


def sender_luma(frame: av.VideoFrame) -> int:
    """The identifying luma of a decoded ColorBarTrack frame (mean of its band's middle row)."""
    plane = frame.planes[0]
    row = frame.height // 4
    start = row * plane.line_size
    pixels = bytes(memoryview(plane)[start : start + frame.width])
    return round(sum(pixels) / len(pixels))


def frame_number(frame: av.VideoFrame) -> int:
    """The number a ColorBarTrack drew in its counter strip (modulo 2**COUNTER_BITS)."""
    plane = frame.planes[0]
    row = frame.height - frame.height // 16
    start = row * plane.line_size
    pixels = bytes(memoryview(plane)[start : start + frame.width])
    block = frame.width // COUNTER_BITS
    number = 0
    for index in range(COUNTER_BITS):
        number = number << 1 | (pixels[index * block + block // 2] > 128)
    return number
