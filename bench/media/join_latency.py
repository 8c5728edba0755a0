"""Join -> ICE connected -> first decoded frame, through the hub's `/rtc` namespace.

Starts a hub as a process of its own (`python -m pawhub hub`, on a fresh database created on
the server of DATABASE_URL and dropped at the end, and a Redis namespace of its own), makes the
consults in this process, and runs their peers in `--peer-processes` worker processes
(multiprocessing, spawn), so that the peers' VP8 encoding and decoding is not timed against the
hub's event loop in one process. Each consult is a vet and an owner, each an aiortc peer with a
320x240 15 fps ColorBarTrack: the vet joins, the owner joins and waits, the vet admits on
`lobby`, and they negotiate, peer to peer (p2p) or each with the hub's SfuRoom (sfu, asked for
at join). Each participant's clock starts when it emits `join`; the owner's includes the lobby.
Consults run one after another (`--sequential`, handed to the workers in turn) and then all at
once (`--concurrent`, split over the workers, which start together); p50 and p95 are over
participants.

    DATABASE_URL=... REDIS_URL=... .venv/bin/python -m bench.media.join_latency \\
        --mode p2p sfu --sequential 20 --concurrent 10 --peer-processes 2
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import asyncpg

from bench.media.consults import make_video_consult
from bench.media.join_peers import Ticket, Timing, run_batch, worker_ready
from bench.media.room_peer import use_loopback_only
from deploy.embedded import free_port
from pawhub.resources import migrate_database
from pawhub.settings import Settings

HUB_START_TIMEOUT_S = 30.0


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


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@asynccontextmanager
async def hub_process(settings: Settings) -> AsyncIterator[str]:
    """`python -m pawhub hub` on a free loopback port, stopped afterwards; yields its URL."""
    port = free_port()
    env = settings.child_environment()
    process = subprocess.Popen(
        [sys.executable, "-m", "pawhub", "hub", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HUB_START_TIMEOUT_S
        while not await asyncio.to_thread(_healthy, url):
            if process.poll() is not None:
                raise RuntimeError(f"hub exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("hub did not become healthy")
            await asyncio.sleep(0.2)
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@asynccontextmanager
async def bench_hub(settings: Settings) -> AsyncIterator[tuple[str, asyncpg.Pool, Settings]]:
    """A hub process on a fresh database and Redis namespace of its own, dropped afterwards."""
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
        async with hub_process(bench_settings) as url:
            pool = await asyncpg.create_pool(database_url, min_size=1, max_size=10)
            try:
                yield url, pool, bench_settings
            finally:
                await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def make_tickets(pool: asyncpg.Pool, jwt_secret: str, count: int) -> list[Ticket]:
    return [Ticket.of(await make_video_consult(pool, jwt_secret)) for _ in range(count)]


async def run_mode(
    workers: ProcessPoolExecutor,
    processes: int,
    url: str,
    pool: asyncpg.Pool,
    settings: Settings,
    mode: str,
    sequential: int,
    concurrent: int,
) -> None:
    loop = asyncio.get_running_loop()
    timings: list[Timing] = []
    for ticket in await make_tickets(pool, settings.jwt_secret, sequential):
        # One consult at a time; the pool hands each to whichever worker is free.
        timings += await loop.run_in_executor(workers, run_batch, url, [ticket], mode, 0.0)
    print(report(mode, f"{sequential} one after another", timings), flush=True)
    tickets = await make_tickets(pool, settings.jwt_secret, concurrent)
    shares = [tickets[index::processes] for index in range(processes)]
    start_at = time.time() + 1.0
    batches = await asyncio.gather(
        *(
            loop.run_in_executor(workers, run_batch, url, share, mode, start_at)
            for share in shares
            if share
        )
    )
    timings = [timing for batch in batches for timing in batch]
    print(report(mode, f"{concurrent} at once", timings), flush=True)


async def main(modes: Sequence[str], sequential: int, concurrent: int, processes: int) -> None:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=use_loopback_only) as pool_:
        loop = asyncio.get_running_loop()
        # Start every worker (and its aiortc imports) before anything is timed.
        await asyncio.gather(*(loop.run_in_executor(pool_, worker_ready) for _ in range(processes)))
        async with bench_hub(Settings()) as (url, pool, settings):
            print(
                "milliseconds from join to ICE connected and to the first decoded frame "
                f"(hub in its own process, peers in {processes})\n"
            )
            print("| mode | consults | participants | ICE p50 | ICE p95 | frame p50 | frame p95 |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            for mode in modes:
                await run_mode(pool_, processes, url, pool, settings, mode, sequential, concurrent)


def cli(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mode", nargs="+", choices=("p2p", "sfu"), default=["p2p", "sfu"])
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--peer-processes", type=int, default=2)
    arguments = parser.parse_args(argv)
    if arguments.peer_processes < 1:
        parser.error("--peer-processes must be at least 1")
    asyncio.run(
        main(arguments.mode, arguments.sequential, arguments.concurrent, arguments.peer_processes)
    )


if __name__ == "__main__":
    cli()
