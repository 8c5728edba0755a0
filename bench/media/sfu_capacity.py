"""How many concurrent sfu consults (three participants each) one core carries before the
delivered frame rate falls below 15 fps.

The rooms (one SfuRoom per consult, as the hub hosts them) run in a child process pinned to one
core (`--room-cpu`), signaled over loopback websockets. The participants run in this process,
pinned to the other cores: each publishes a synthetic ColorBarTrack (pre-encoded once into a
loop of VP8 packets, so that the clients do not spend the box's CPU encoding) and receives the
other two's video through the room, which decodes each published track once and re-encodes it
per subscriber (relays drop frames for a subscriber whose encoder lags, so overload shows as a
lower delivered frame rate). For each number of consults, after a warm-up, the frames each
received stream decodes over a window give its delivered frame rate; the room process's CPU
time gives its load.

    .venv/bin/python -m bench.media.sfu_capacity [--consults 1 2 4 6 8] [--width 320
        --height 240 --fps 30] [--room-cpu 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from fractions import Fraction
from typing import Any

import aiohttp
import av
from aiortc import MediaStreamTrack

from bench.media.room_peer import (
    RoomPeer,
    room_cpu_s,
    serve_rooms,
    use_loopback_only,
    wait_until_up,
)
from bench.media.synthetic import ColorBarTrack
from deploy.embedded import free_port

PARTICIPANTS = 3
TARGET_FPS = 15.0
WARM_UP_S = 6.0
WINDOW_S = 10.0
LOOP_S = 2  # the pre-encoded loop: one keyframe, then delta frames


def encode_loop(width: int, height: int, fps: int) -> list[bytes]:
    """LOOP_S seconds of ColorBarTrack as VP8 packets, the first a keyframe."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps, 1)
    codec.gop_size = LOOP_S * fps
    codec.bit_rate = 500_000
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    source = ColorBarTrack(120, width=width, height=height, fps=fps)
    packets: list[bytes] = []
    for index in range(LOOP_S * fps):
        frame = source.next_frame()
        frame.pts, frame.time_base = index, Fraction(1, fps)
        packets += [bytes(packet) for packet in codec.encode(frame)]
    packets += [bytes(packet) for packet in codec.encode(None)]
    return packets[: LOOP_S * fps]


class PacketLoop(MediaStreamTrack):
    """A video track that sends pre-encoded VP8 packets at `fps` (aiortc packetizes them
    without encoding)."""

    kind = "video"

    def __init__(self, packets: list[bytes], fps: int) -> None:
        super().__init__()
        self._packets = packets
        self._fps = fps
        self._sent = 0
        self._started_at: float | None = None

    async def recv(self) -> av.Packet[Any]:
        now = time.monotonic()
        if self._started_at is None:
            self._started_at = now
        await asyncio.sleep(max(0.0, self._started_at + self._sent / self._fps - now))
        packet = av.Packet(self._packets[self._sent % len(self._packets)])
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


async def measure(
    consults: int, packets: list[bytes], fps: int, room_cpu: int
) -> tuple[float, float, float, float, int]:
    """Room CPU (% of a core), client CPU (%), mean and 10th-percentile delivered fps per
    received stream, and the number of streams that delivered anything."""
    port = free_port()
    rooms = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.media.sfu_capacity", "--serve", str(port),
        "--room-cpu", str(room_cpu),
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    participants = [
        RoomPeer(f"{base_url}/signal?room=c{consult}&id=p{index}", PacketLoop(packets, fps))
        for consult in range(consults)
        for index in range(PARTICIPANTS)
    ]
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until_up(http, base_url)
            for participant in participants:
                await participant.join(http)
            await asyncio.sleep(WARM_UP_S)
            room_before, client_before = await room_cpu_s(http, base_url), time.process_time()
            before = _streams(participants)
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
    return (
        100 * (room_after - room_before) / WINDOW_S,
        100 * (client_after - client_before) / WINDOW_S,
        statistics.fmean(rates),
        p10,
        len(after),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--consults", type=int, nargs="+", default=[1, 2, 4, 6, 8])
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--room-cpu", type=int, default=1, help="the core the rooms run on")
    args = parser.parse_args()
    use_loopback_only()
    if args.serve:
        os.sched_setaffinity(0, {args.room_cpu})
        asyncio.run(serve_rooms(args.serve))
        return
    others = os.sched_getaffinity(0) - {args.room_cpu}
    if others:
        os.sched_setaffinity(0, others)  # the participants stay off the rooms' core
    packets = encode_loop(args.width, args.height, args.fps)
    print(
        f"{args.width}x{args.height} at {args.fps} fps, VP8, {PARTICIPANTS} per consult, "
        f"rooms on core {args.room_cpu}, participants on {sorted(others)}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print("consults  streams  room CPU %  client CPU %  mean fps  p10 fps  load")
    for consults in args.consults:
        room, client, mean, p10, streams = asyncio.run(
            measure(consults, packets, args.fps, args.room_cpu)
        )
        print(
            f"{consults:>8}  {streams:>7}  {room:>10.1f}  {client:>12.1f}  {mean:>8.1f}"
            f"  {p10:>7.1f}  {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        if p10 < TARGET_FPS and mean < TARGET_FPS:
            break


if __name__ == "__main__":
    main()
