"""How many concurrent sfu consults (three participants each) one core carries before the
delivered frame rate falls below 15 fps.

The rooms (one SfuRoom per consult, as the hub hosts them) run in a child process pinned to one
core (`--room-cpu`), signaled over loopback websockets. The participants run in this process,
pinned to the other cores: each publishes a synthetic ColorBarTrack (pre-encoded once into a
loop of VP8 packets, so that the clients do not spend the box's CPU encoding) and receives the
other two's video through the room. Both SFUs run, one after the other, for each number of
consults: `relay` decodes each published track once and re-encodes it per subscriber (the
SfuRoom before issue 16), `forward` forwards the encoded frames (the hub's SfuRoom). For each,
after a warm-up, the frames each received stream decodes over a window give its delivered frame
rate, the room process's CPU time gives its load, and the frame number drawn in each decoded
frame, against the time its publisher sent that frame, gives the glass-to-glass latency
through the room (publisher packetizing, the room, subscriber depacketizing and decoding).
Only the first DECODING_CONSULTS consults' participants decode; the others count the encoded
frames they receive, so that the participants' core is not the limit.

    .venv/bin/python -m bench.media.sfu_capacity [--consults 1 2 4 6 8] [--width 320
        --height 240 --fps 30] [--room-cpu 1] [--sfu relay forward]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from fractions import Fraction
from typing import Any, NamedTuple

import aiohttp
import av
from aiortc import MediaStreamTrack

from bench.media.room_peer import (
    SFUS,
    RoomPeer,
    room_cpu_s,
    serve_rooms,
    use_loopback_only,
    wait_until_up,
)
from bench.media.synthetic import ColorBarTrack, frame_number, sender_luma
from deploy.embedded import free_port

PARTICIPANTS = 3
TARGET_FPS = 15.0
WARM_UP_S = 6.0
WINDOW_S = 10.0
LOOP_S = 2  # the pre-encoded loop: one keyframe, then delta frames
DECODING_CONSULTS = 2  # whose participants decode (for latency); the others count frames
LUMAS = (50, 120, 190)  # one per participant of a consult, to tell their videos apart


def encode_loop(width: int, height: int, fps: int, luma: int) -> list[bytes]:
    """LOOP_S seconds of ColorBarTrack as VP8 packets, the first a keyframe."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps, 1)
    codec.gop_size = LOOP_S * fps
    codec.bit_rate = 500_000
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    source = ColorBarTrack(luma, width=width, height=height, fps=fps)
    packets: list[bytes] = []
    for index in range(LOOP_S * fps):
        frame = source.next_frame()
        frame.pts, frame.time_base = index, Fraction(1, fps)
        packets += [bytes(packet) for packet in codec.encode(frame)]
    packets += [bytes(packet) for packet in codec.encode(None)]
    return packets[: LOOP_S * fps]


class PacketLoop(MediaStreamTrack):
    """A video track that sends pre-encoded VP8 packets at `fps` (aiortc packetizes them
    without encoding); `sent_at[n]` is when it last sent the loop's frame n."""

    kind = "video"

    def __init__(self, packets: list[bytes], fps: int) -> None:
        super().__init__()
        self._packets = packets
        self._fps = fps
        self._sent = 0
        self._started_at: float | None = None
        self.sent_at = [0.0] * len(packets)

    async def recv(self) -> av.Packet[Any]:
        now = time.monotonic()
        if self._started_at is None:
            self._started_at = now
        await asyncio.sleep(max(0.0, self._started_at + self._sent / self._fps - now))
        index = self._sent % len(self._packets)
        packet = av.Packet(self._packets[index])
        self.sent_at[index] = time.monotonic()
        packet.pts = self._sent
        packet.time_base = Fraction(1, self._fps)
        self._sent += 1
        return packet


def _streams(participants: list[RoomPeer]) -> dict[tuple[str, str], int]:
    return {
        (participant.signal_url, track): count
        for participant in participants
        for track, count in participant.frames.items()
    }


class Latencies:
    """Glass-to-glass latencies of the frames one consult's participants decode."""

    def __init__(self, loops: list[PacketLoop], samples: list[float]) -> None:
        self._loops = loops
        self._samples = samples
        self.recording = False

    def __call__(self, frame: av.VideoFrame) -> None:
        if not self.recording:
            return
        luma = sender_luma(frame)
        loop = self._loops[min(range(len(LUMAS)), key=lambda index: abs(LUMAS[index] - luma))]
        index = frame_number(frame)
        if index < len(loop.sent_at):
            latency = time.monotonic() - loop.sent_at[index]
            if 0 <= latency < LOOP_S:  # else a frame number the loop has not sent again yet
                self._samples.append(latency)


class Result(NamedTuple):
    room_cpu: float  # % of a core
    client_cpu: float
    mean_fps: float  # delivered per received stream
    p10_fps: float
    streams: int  # that delivered anything
    latency_p50_ms: float
    latency_p95_ms: float


async def measure(
    sfu: str, consults: int, loops: list[list[bytes]], fps: int, room_cpu: int
) -> Result:
    port = free_port()
    rooms = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.media.sfu_capacity", "--serve", str(port),
        "--room-cpu", str(room_cpu), "--sfu", sfu,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    samples: list[float] = []
    latencies: list[Latencies] = []
    participants: list[RoomPeer] = []
    for consult in range(consults):
        tracks = [PacketLoop(loop, fps) for loop in loops]
        latencies.append(Latencies(tracks, samples))
        participants += [
            RoomPeer(
                f"{base_url}/signal?room=c{consult}&id=p{index}",
                track,
                latencies[-1],
                decode=consult < DECODING_CONSULTS,
            )
            for index, track in enumerate(tracks)
        ]
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until_up(http, base_url)
            for participant in participants:
                await participant.join(http)
            await asyncio.sleep(WARM_UP_S)
            room_before, client_before = await room_cpu_s(http, base_url), time.process_time()
            before = _streams(participants)
            for latency in latencies:
                latency.recording = True
            await asyncio.sleep(WINDOW_S)
            room_after, client_after = await room_cpu_s(http, base_url), time.process_time()
            after = _streams(participants)
    finally:
        for participant in participants:
            await participant.close()
        rooms.terminate()
        await rooms.wait()
    expected = consults * PARTICIPANTS * (PARTICIPANTS - 1)
    rates = [(after[key] - before.get(key, 0)) / WINDOW_S for key in after]
    rates += [0.0] * (expected - len(rates))  # streams that never arrived delivered nothing
    rates.sort()
    p10 = rates[len(rates) // 10]
    samples.sort()
    return Result(
        100 * (room_after - room_before) / WINDOW_S,
        100 * (client_after - client_before) / WINDOW_S,
        statistics.fmean(rates),
        p10,
        len(after),
        1000 * samples[len(samples) // 2] if samples else float("nan"),
        1000 * samples[len(samples) * 95 // 100] if samples else float("nan"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--consults", type=int, nargs="+", default=[1, 2, 4, 6, 8])
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--room-cpu", type=int, default=1, help="the core the rooms run on")
    parser.add_argument("--sfu", nargs="+", choices=sorted(SFUS), default=["relay", "forward"])
    args = parser.parse_args()
    use_loopback_only()
    if args.serve:
        os.sched_setaffinity(0, {args.room_cpu})
        asyncio.run(serve_rooms(args.serve, args.sfu[0]))
        return
    others = os.sched_getaffinity(0) - {args.room_cpu}
    if others:
        os.sched_setaffinity(0, others)  # the participants stay off the rooms' core
    loops = [encode_loop(args.width, args.height, args.fps, luma) for luma in LUMAS]
    print(
        f"{args.width}x{args.height} at {args.fps} fps, VP8, {PARTICIPANTS} per consult, "
        f"rooms on core {args.room_cpu}, participants on {sorted(others)}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        "sfu      consults  streams  room CPU %  client CPU %  mean fps  p10 fps"
        "  latency p50 ms  p95 ms  load"
    )
    saturated: set[str] = set()
    for consults in args.consults:
        for sfu in args.sfu:
            if sfu in saturated:
                continue
            result = asyncio.run(measure(sfu, consults, loops, args.fps, args.room_cpu))
            print(
                f"{sfu:<7}  {consults:>8}  {result.streams:>7}  {result.room_cpu:>10.1f}"
                f"  {result.client_cpu:>12.1f}  {result.mean_fps:>8.1f}  {result.p10_fps:>7.1f}"
                f"  {result.latency_p50_ms:>14.0f}  {result.latency_p95_ms:>6.0f}"
                f"  {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            if result.p10_fps < TARGET_FPS and result.mean_fps < TARGET_FPS:
                saturated.add(sfu)
        if saturated >= set(args.sfu):
            break


if __name__ == "__main__":
    main()
