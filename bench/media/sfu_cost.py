"""What the embedded SFU costs: CPU of an SfuRoom process per published track and per
subscriber stream.

The room runs in a child process (signaled over a loopback websocket), so its CPU time is
measured apart from the clients': one publisher sends a ColorBarTrack, K subscribers receive
it, and the child's CPU over a fixed window gives the cost of one published track plus K
subscriber streams: forwarded as they are (`forward`, the hub's SfuRoom) or decoded once and
re-encoded per subscriber (`relay`, the SfuRoom before issue 16), both in the same run.

    .venv/bin/python -m bench.media.sfu_cost [--subscribers 0 1 2 4] [--width 320 --height 240]
        [--sfu relay forward]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import aiohttp

from bench.media import room_peer
from bench.media.room_peer import RoomPeer
from bench.media.synthetic import ColorBarTrack
from deploy.embedded import free_port

WARM_UP_S = 3.0
WINDOW_S = 10.0


async def measure(
    sfu: str, subscribers: int, width: int, height: int, fps: int
) -> tuple[float, float]:
    """Return the room process's CPU (% of one core) and the subscribers' mean fps."""
    port = free_port()
    room_process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.media.sfu_cost", "--serve", str(port), "--sfu", sfu
    )
    base_url = f"http://127.0.0.1:{port}"
    peers = [
        RoomPeer(
            f"{base_url}/signal?room=cost&id=publisher",
            ColorBarTrack(120, width=width, height=height, fps=fps),
        )
    ]
    peers += [
        RoomPeer(f"{base_url}/signal?room=cost&id=subscriber-{n}", None) for n in range(subscribers)
    ]
    try:
        async with aiohttp.ClientSession() as http:
            await room_peer.wait_until_up(http, base_url)
            for peer in peers:
                await peer.join(http)
            await asyncio.sleep(WARM_UP_S)
            cpu_before, frames_before = await room_peer.room_cpu_s(http, base_url), _frames(peers)
            await asyncio.sleep(WINDOW_S)
            cpu_after, frames_after = await room_peer.room_cpu_s(http, base_url), _frames(peers)
    finally:
        for peer in peers:
            await peer.close()
        room_process.terminate()
        await room_process.wait()
    fps_each = (frames_after - frames_before) / WINDOW_S / max(subscribers, 1)
    return 100 * (cpu_after - cpu_before) / WINDOW_S, fps_each


def _frames(peers: Sequence[RoomPeer]) -> int:
    return sum(sum(peer.frames.values()) for peer in peers[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument(
        "--sfu", nargs="+", choices=sorted(room_peer.SFUS), default=["relay", "forward"]
    )
    args = parser.parse_args()
    room_peer.use_loopback_only()
    if args.serve:
        asyncio.run(room_peer.serve_rooms(args.serve, args.sfu[0]))
        return
    print(f"{args.width}x{args.height} at {args.fps} fps, one publisher, VP8")
    print("sfu      subscribers  room CPU (% of a core)  fps per subscriber")
    for subscribers in args.subscribers:
        for sfu in args.sfu:
            cpu, fps = asyncio.run(measure(sfu, subscribers, args.width, args.height, args.fps))
            print(f"{sfu:<7}  {subscribers:>11}  {cpu:>22.1f}  {fps:>18.1f}", flush=True)


if __name__ == "__main__":
    main()
