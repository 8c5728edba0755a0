"""What the hub spends on a consult Janus serves: with JANUS_URL, the hub only signals.

A hub process (`python -m pawhub hub`, on a fresh database) and a Janus (deploy/janus), one
`sfu` consult of a vet and an owner through `/rtc`, each with a publish and a subscribe
connection (bench.media.split_media) sending a pre-encoded 640x480 VP8 loop at 30 fps
(sfu_capacity's PacketLoop, 500 kbit/s) and decoding the other's. After a warm-up, the hub's
CPU over a window (its /metrics' process_cpu_seconds_total) and Janus's (/proc), beside the
frames each participant decoded.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python -m bench.media.janus_hub_cost
        [--width 640 --height 480 --fps 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
from functools import partial
from pathlib import Path

import aiohttp

from bench.media.consults import make_video_consult
from bench.media.janus_server import JanusServer
from bench.media.join_latency import bench_hub
from bench.media.rtc_client import RtcClient
from bench.media.sfu_capacity import LUMAS, PacketLoop, encode_loop
from bench.media.split_media import SplitMedia
from pawhub.settings import Settings

WARM_UP_S = 5.0
WINDOW_S = 15.0
FLOWING_TIMEOUT_S = 30.0


async def hub_cpu_s(http: aiohttp.ClientSession, hub_url: str) -> float:
    async with http.get(f"{hub_url}/metrics") as response:
        found = re.search(r"^process_cpu_seconds_total (\S+)$", await response.text(), re.M)
    if found is None:
        raise RuntimeError("the hub's /metrics has no process_cpu_seconds_total")
    return float(found.group(1))


async def run(width: int, height: int, fps: int) -> None:
    loops = [encode_loop(width, height, fps, luma) for luma in LUMAS[:2]]
    with tempfile.TemporaryDirectory(prefix="pawhub-janus-hub-") as folder:
        janus = JanusServer(Path(folder) / "janus")
        await janus.start()
        os.environ["JANUS_URL"] = janus.url  # the hub process reads its settings from here
        try:
            async with bench_hub(Settings()) as (url, pool, settings):
                consult = await make_video_consult(pool, settings.jwt_secret)
                vet = await RtcClient.connect(url, consult.vet.token)
                owner = await RtcClient.connect(url, consult.owner.token)
                await vet.call("join", {"consult_id": consult.id, "mode": "sfu"})
                await owner.call("join", {"consult_id": consult.id})
                await vet.wait_for("lobby")
                await vet.call("admit", {"consult_id": consult.id, "user_id": consult.owner.id})
                media = [
                    SplitMedia(client, consult.id, luma, partial(PacketLoop, loop, fps))
                    for client, luma, loop in zip((vet, owner), LUMAS, loops, strict=False)
                ]
                try:
                    await measure(url, janus, media, width, height, fps)
                finally:
                    for member in media:
                        await member.close()
                    await vet.close()
                    await owner.close()
        finally:
            await janus.kill()


async def measure(
    url: str, janus: JanusServer, media: list[SplitMedia], width: int, height: int, fps: int
) -> None:
    vet, owner = media
    for member in media:
        member.publish()
    async with aiohttp.ClientSession() as http:
        deadline = asyncio.get_running_loop().time() + FLOWING_TIMEOUT_S
        while not (vet.frames_from(owner.luma) and owner.frames_from(vet.luma)):
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError("no video both ways through Janus")
            await asyncio.sleep(0.2)
        await asyncio.sleep(WARM_UP_S)
        hub_before, janus_before = await hub_cpu_s(http, url), janus.cpu_s()
        frames_before = (vet.frames_from(owner.luma), owner.frames_from(vet.luma))
        await asyncio.sleep(WINDOW_S)
        hub_after, janus_after = await hub_cpu_s(http, url), janus.cpu_s()
        frames_after = (vet.frames_from(owner.luma), owner.frames_from(vet.luma))
    fps_each = [(a - b) / WINDOW_S for a, b in zip(frames_after, frames_before, strict=True)]
    print(f"one two-person consult through Janus, {width}x{height} at {fps} fps, {WINDOW_S:.0f} s")
    print(f"hub CPU:   {100 * (hub_after - hub_before) / WINDOW_S:.2f} % of a core")
    print(f"Janus CPU: {100 * (janus_after - janus_before) / WINDOW_S:.2f} % of a core")
    print(f"decoded:   vet {fps_each[0]:.1f} fps of the owner, owner {fps_each[1]:.1f} of the vet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(run(args.width, args.height, args.fps))


if __name__ == "__main__":
    main()
