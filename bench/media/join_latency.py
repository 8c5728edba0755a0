"""Join -> ICE connected -> first decoded frame, through the hub's `/rtc` namespace.

Starts a hub in this process (on a fresh database of its own, created on the server of
DATABASE_URL and dropped at the end, and a Redis namespace of its own), then runs video
consults of a vet and an owner, each an aiortc peer with a 320x240 15 fps ColorBarTrack: the
vet joins, the owner joins and waits, the vet admits on `lobby`, and they negotiate, peer to
peer (p2p) or each with the hub's SfuRoom (sfu, asked for at join). Each participant's clock
starts when it emits `join`; the owner's includes the lobby. Consults run one after another
(`--sequential`) and then all at once (`--concurrent`); p50 and p95 are over participants.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python -m bench.media.join_latency \\
        --mode p2p sfu --sequential 20 --concurrent 10
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import aioice.ice
import asyncpg
from aiohttp import web

from bench.media.consults import make_video_consult
from bench.media.rtc_client import MediaPeer, RtcClient
from deploy.embedded import free_port
from pawhub.hub import build_hub_app
from pawhub.resources import migrate_database
from pawhub.settings import Settings

LUMAS = {"vet": 50, "owner": 120}
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Timing:
    ice_s: float
    first_frame_s: float


def use_loopback_only() -> None:
    """Gather host candidates on 127.0.0.1 alone (aioice skips loopback by default)."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


async def _until_first_frame(peer: MediaPeer) -> None:
    while peer.first_frame_at is None or peer.connected_at is None:
        await asyncio.sleep(0.005)


async def run_consult(hub_url: str, pool: asyncpg.Pool, jwt_secret: str, mode: str) -> list[Timing]:
    consult = await make_video_consult(pool, jwt_secret)
    vet = await RtcClient.connect(hub_url, consult.vet.token)
    owner = await RtcClient.connect(hub_url, consult.owner.token)
    remote = {"vet": consult.owner.id, "owner": consult.vet.id} if mode == "p2p" else None
    peers = {
        name: client.peer(consult.id, remote[name] if remote else "sfu", LUMAS[name])
        for name, client in (("vet", vet), ("owner", owner))
    }
    try:
        started = {"vet": time.monotonic()}
        join = {"consult_id": consult.id, **({"mode": "sfu"} if mode == "sfu" else {})}
        assert (await vet.call("join", join))["ok"]
        if mode == "sfu":
            await peers["vet"].offer()
        started["owner"] = time.monotonic()
        assert (await owner.call("join", join))["ok"]
        await vet.wait_for("lobby")
        assert (await vet.call("admit", {"consult_id": consult.id, "user_id": consult.owner.id}))[
            "ok"
        ]
        await owner.wait_for("admitted")
        await (peers["owner"] if mode == "sfu" else peers["vet"]).offer()
        await asyncio.wait_for(
            asyncio.gather(*(_until_first_frame(peer) for peer in peers.values())), TIMEOUT_S
        )
        return [
            Timing(
                ice_s=(peer.connected_at or 0) - started[name],
                first_frame_s=(peer.first_frame_at or 0) - started[name],
            )
            for name, peer in peers.items()
        ]
    finally:
        await vet.close()
        await owner.close()


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(mode: str, shape: str, timings: list[Timing]) -> str:
    ice = [t.ice_s * 1000 for t in timings]
    frame = [t.first_frame_s * 1000 for t in timings]
    return (
        f"| {mode} | {shape} | {len(timings)} | {statistics.median(ice):.0f} | "
        f"{percentile(ice, 0.95):.0f} | {statistics.median(frame):.0f} | "
        f"{percentile(frame, 0.95):.0f} |"
    )


@asynccontextmanager
async def bench_hub(settings: Settings) -> AsyncIterator[tuple[str, asyncpg.Pool, Settings]]:
    """A hub on a fresh database of its own, dropped afterwards."""
    server_url = settings.database_url
    if not (server_url and settings.redis_url):
        raise SystemExit("set DATABASE_URL and REDIS_URL")
    name = f"pawhub_bench_{uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    database_url = urlunsplit(urlsplit(server_url)._replace(path="/" + name))
    try:
        await migrate_database(database_url)
        bench_settings = settings.model_copy(
            update={"database_url": database_url, "redis_namespace": name}
        )
        runner = web.AppRunner(build_hub_app(bench_settings))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=10)
        try:
            yield f"http://127.0.0.1:{port}", pool, bench_settings
        finally:
            await pool.close()
            await runner.cleanup()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def main(modes: Sequence[str], sequential: int, concurrent: int) -> None:
    use_loopback_only()
    async with bench_hub(Settings()) as (url, pool, settings):
        print("milliseconds from join to ICE connected and to the first decoded frame\n")
        print("| mode | consults | participants | ICE p50 | ICE p95 | frame p50 | frame p95 |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for mode in modes:
            timings: list[Timing] = []
            for _ in range(sequential):
                timings += await run_consult(url, pool, settings.jwt_secret, mode)
            print(report(mode, f"{sequential} one after another", timings), flush=True)
            batches = await asyncio.gather(
                *(run_consult(url, pool, settings.jwt_secret, mode) for _ in range(concurrent))
            )
            timings = [timing for batch in batches for timing in batch]
            print(report(mode, f"{concurrent} at once", timings), flush=True)


def cli(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mode", nargs="+", choices=("p2p", "sfu"), default=["p2p", "sfu"])
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=10)
    arguments = parser.parse_args(argv)
    asyncio.run(main(arguments.mode, arguments.sequential, arguments.concurrent))


if __name__ == "__main__":
    cli()
