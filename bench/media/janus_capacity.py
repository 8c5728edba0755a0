"""How many concurrent consults (three participants each, as bench.media.sfu_capacity) one core
of Janus carries before the delivered frame rate falls below 15 fps.

Janus (deploy/janus's configuration) runs pinned to one core (`--janus-cpu`). The participants
run in this process, on the other cores: each publishes a pre-encoded VP8 loop (sfu_capacity's
PacketLoop at 500 kbit/s, so that they spend nothing on encoding) on a publish connection and
receives the other two's video on a subscribe connection, counted without decoding. Each
consult's room, tokens and connections are negotiated through media.janus as the hub does; the
hub is not in the media path (its own cost with Janus: bench.media.janus_hub_cost). For each
number of consults, after a warm-up, Janus's CPU time over a window (from /proc) and the frames
each received stream delivered; this process's CPU shows whether the participants' side was the
limit instead.

    .venv/bin/python -m bench.media.janus_capacity [--consults 1 2 4 8] [--width 640
        --height 480 --fps 30] [--janus-cpu 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import aiohttp
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from bench.media.janus_server import JanusServer
from bench.media.sfu_capacity import LUMAS, PARTICIPANTS, TARGET_FPS, PacketLoop, encode_loop
from media import _aiortc
from media.janus import JanusSession
from media.janus_room import JanusRoom

WARM_UP_S = 6.0
WINDOW_S = 10.0


class Participant:
    """Publishes `track` on one connection, receives the others' on another, and counts the
    encoded video frames received per track."""

    def __init__(self, name: str, track: PacketLoop) -> None:
        self.name = name
        self.token = JanusRoom.new_token()
        self.frames: Counter[str] = Counter()
        self.feed = ""
        self.publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.publisher.addTrack(track)
        self.subscriber = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.subscriber.on("track", self._count)

    async def publish(self, session: JanusSession, room: JanusRoom) -> None:
        handle = await session.attach()
        self.feed = await handle.join_as_publisher(room.id, self.token, self.name)
        await self.publisher.setLocalDescription(await self.publisher.createOffer())
        offer = {"type": "offer", "sdp": self.publisher.localDescription.sdp}
        await self.publisher.setRemoteDescription(
            RTCSessionDescription(**await handle.publish(offer))
        )
        while (await handle.events.get())["janus"] != "webrtcup":
            pass

    async def subscribe(self, session: JanusSession, room: JanusRoom, feeds: list[str]) -> None:
        handle = await session.attach()
        offer = await handle.subscribe(room.id, self.token, feeds)
        await self.subscriber.setRemoteDescription(RTCSessionDescription(**offer))
        await self.subscriber.setLocalDescription(await self.subscriber.createAnswer())
        await handle.start({"type": "answer", "sdp": self.subscriber.localDescription.sdp})

    def _count(self, track: MediaStreamTrack) -> None:
        receiver = next(
            t.receiver for t in self.subscriber.getTransceivers() if t.receiver.track is track
        )

        def count(_codec: object, _frame: object) -> None:
            self.frames[track.id] += 1

        _aiortc.tap_encoded_frames(receiver, count, lambda: None, lambda: None)

    async def close(self) -> None:
        await self.publisher.close()
        await self.subscriber.close()


class Result(NamedTuple):
    janus_cpu: float  # % of a core
    client_cpu: float
    mean_fps: float  # delivered per received stream
    p10_fps: float


def streams(participants: list[Participant]) -> dict[tuple[str, str], int]:
    return {(p.name, track): count for p in participants for track, count in p.frames.items()}


async def measure(janus: JanusServer, consults: int, loops: list[list[bytes]], fps: int) -> Result:
    participants: list[Participant] = []
    async with aiohttp.ClientSession() as http:
        session = await JanusSession.connect(http, janus.url)
        rooms = []
        try:
            for consult in range(consults):
                room = JanusRoom(await session.attach(), f"capacity-{consults}-{consult}")
                members = [
                    Participant(f"c{consult}p{index}", PacketLoop(loop, fps))
                    for index, loop in enumerate(loops)
                ]
                await room.create([m.token for m in members], max_publishers=PARTICIPANTS)
                rooms.append(room)
                for member in members:
                    await member.publish(session, room)
                for member in members:
                    await member.subscribe(
                        session, room, [o.feed for o in members if o is not member]
                    )
                participants += members
            await asyncio.sleep(WARM_UP_S)
            janus_before, client_before = janus.cpu_s(), time.process_time()
            before = streams(participants)
            await asyncio.sleep(WINDOW_S)
            janus_after, client_after = janus.cpu_s(), time.process_time()
            after = streams(participants)
        finally:
            for participant in participants:
                await participant.close()
            for room in rooms:
                await room.destroy()
            await session.close()
    expected = consults * PARTICIPANTS * (PARTICIPANTS - 1)
    rates = sorted(
        [(after[key] - before.get(key, 0)) / WINDOW_S for key in after]
        + [0.0] * (expected - len(after))  # streams that never arrived delivered nothing
    )
    return Result(
        100 * (janus_after - janus_before) / WINDOW_S,
        100 * (client_after - client_before) / WINDOW_S,
        statistics.fmean(rates),
        rates[len(rates) // 10],
    )


async def run(consult_counts: list[int], width: int, height: int, fps: int, cpu: int) -> None:
    loops = [encode_loop(width, height, fps, luma) for luma in LUMAS]
    with tempfile.TemporaryDirectory(prefix="pawhub-janus-bench-") as folder:
        janus = JanusServer(Path(folder) / "janus", cpu=cpu)
        await janus.start()
        try:
            print(f"{width}x{height} at {fps} fps, {PARTICIPANTS} per consult, Janus on core {cpu}")
            print("consults  Janus CPU (% of a core)  clients CPU  mean fps  p10 fps  per core*")
            for consults in consult_counts:
                result = await measure(janus, consults, loops, fps)
                held = result.p10_fps >= TARGET_FPS
                per_core = consults * 100 / result.janus_cpu if result.janus_cpu else float("inf")
                print(
                    f"{consults:>8}  {result.janus_cpu:>23.1f}  {result.client_cpu:>11.1f}"
                    f"  {result.mean_fps:>8.1f}  {result.p10_fps:>7.1f}"
                    f"  {per_core:>8.0f}{'' if held else '  (below 15 fps)'}",
                    flush=True,
                )
            print("* consults one core of Janus would carry at this cost per consult")
        finally:
            await janus.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--consults", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--janus-cpu", type=int, default=1, help="the core Janus runs on")
    args = parser.parse_args()
    others = os.sched_getaffinity(0) - {args.janus_cpu}
    if others:  # the participants stay off Janus's core
        os.sched_setaffinity(0, others)
    asyncio.run(run(args.consults, args.width, args.height, args.fps, args.janus_cpu))


if __name__ == "__main__":
    main()
