"""Requests/s and latency of GET /v1/pets/{id}/records (JWT check, visibility, audit insert,
records with amendments) against a plain Litestar JSON endpoint, same server, same run.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m bench.rest.records --seconds 10 --concurrency 64 --rounds 5

It creates a database of its own, seeds an owner, a vet with a booking, a pet and its records,
starts the API (`--workers` uvicorn processes) and loads it from `--clients` processes, then
drops the database. Only 127.0.0.1 is ever targeted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import aiohttp
import asyncpg
import psutil

from deploy.embedded import free_port
from domain.audit import Actor
from domain.clinical import ehr, records
from domain.clinical.pets import NewPet, create_pet
from domain.identity import NewUser, Role
from domain.identity.tokens import ACCESS_TOKEN_TTL, issue_access_token
from domain.identity.users import create_user
from domain.scheduling.availability import Availability, set_availability
from domain.scheduling.booking_rules import BookingKind, NewBooking
from domain.scheduling.bookings import create_booking
from pawhub.resources import migrate_database
from pawhub.settings import get_settings

RECORDS = 8


@dataclass(frozen=True)
class Result:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    api_cpu_s: float = 0.0  # user + system time of the API's processes while measuring

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def api_cpu_us(self) -> float:
        """API CPU per request: unlike req/s, barely moved by other load on a shared machine."""
        return self.api_cpu_s / self.requests * 1e6

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies_ms, n=100)[q - 1]


async def _seed(database_url: str, secret: str) -> tuple[str, str]:
    """A pet with records its owner may read; returns (records path, owner's token)."""
    conn = await asyncpg.connect(database_url)
    try:

        def someone(role: Role) -> NewUser:
            return NewUser(
                email=f"{uuid4().hex[:12]}@example.com", password="bench-pass", name="B", role=role
            )

        owner = await create_user(conn, someone(Role.owner))
        vet = await create_user(conn, someone(Role.vet))
        open_always = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
        await set_availability(
            conn, vet.id, Availability.model_validate({"time_zone": "UTC", "weekly": open_always})
        )
        pet = await create_pet(conn, owner.id, NewPet(name="Rex", species="dog"))
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        await create_booking(
            conn,
            owner.id,
            NewBooking(
                vet_id=vet.id, pet_id=pet.id, start=start, duration_min=30, kind=BookingKind.video
            ),
        )
        for i in range(RECORDS):
            body = (
                {"kind": "weight", "data": {"kg": 10 + i}}
                if i % 2
                else {
                    "kind": "note",
                    "data": {
                        "subjective": "itchy ears",
                        "objective": "redness",
                        "assessment": "otitis",
                        "plan": "drops",
                    },
                }
            )
            await ehr.add_record(
                conn, Actor(vet.id), pet.id, records.NewRecord.model_validate(body).root
            )
    finally:
        await conn.close()
    # Long enough for the whole run; the token is checked on every request all the same.
    token = issue_access_token(owner, secret, ttl=max(ACCESS_TOKEN_TTL, timedelta(hours=1)))
    return f"/v1/pets/{pet.id}/records", token


async def _load(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while (started := time.perf_counter()) < deadline:
            async with session.get(url, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return Result(len(latencies), errors, elapsed, latencies)


def _load_process(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> Result:
    return asyncio.run(_load(url, headers, concurrency, seconds))


def _cpu_seconds(server: psutil.Process) -> float:
    processes = [server, *server.children(recursive=True)]
    return sum(p.cpu_times().user + p.cpu_times().system for p in processes)


def measure(
    url: str,
    headers: dict[str, str],
    clients: int,
    concurrency: int,
    seconds: float,
    server: psutil.Process,
) -> Result:
    with ProcessPoolExecutor(clients) as pool:
        cpu_before = _cpu_seconds(server)
        runs = [
            pool.submit(_load_process, url, headers, concurrency, seconds) for _ in range(clients)
        ]
        results = [run.result() for run in runs]
        cpu = _cpu_seconds(server) - cpu_before
    return Result(
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        seconds=max(r.seconds for r in results),
        latencies_ms=[ms for r in results for ms in r.latencies_ms],
        api_cpu_s=cpu,
    )


def _wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    async def probe() -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    for _ in range(200):
        if server.poll() is not None:
            raise SystemExit("the API process exited during start-up")
        if asyncio.run(probe()):
            return
        time.sleep(0.1)
    raise SystemExit("the API did not start")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each endpoint")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="connections per client process"
    )
    parser.add_argument("--clients", type=int, default=1, help="load-generating processes")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes serving both endpoints"
    )
    args = parser.parse_args()

    settings = get_settings()
    if not (settings.database_url and settings.redis_url):
        raise SystemExit("set DATABASE_URL (a server we may create a database on) and REDIS_URL")
    name = f"pawhub_bench_{uuid4().hex[:8]}"
    database_url = urlunsplit(urlsplit(settings.database_url)._replace(path="/" + name))

    async def create_database() -> None:
        admin = await asyncpg.connect(settings.database_url)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()

    async def drop_database() -> None:
        admin = await asyncpg.connect(settings.database_url)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()

    asyncio.run(create_database())
    try:
        asyncio.run(migrate_database(database_url))
        path, token = asyncio.run(_seed(database_url, settings.jwt_secret))
        port = free_port()
        env = {**os.environ, "DATABASE_URL": database_url, "REDIS_NAMESPACE": f"bench-{name}"}
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.rest.server", str(port), str(args.workers)], env=env
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_until_up(base, server)
            targets = {
                "plain JSON (GET /bench/plain)": (f"{base}/bench/plain", {}),
                f"EHR read (GET {path.replace(path.split('/')[3], '{id}')})": (
                    f"{base}{path}",
                    {"Authorization": f"Bearer {token}"},
                ),
            }
            labels = list(targets)
            api = psutil.Process(server.pid)
            for url, headers in targets.values():
                measure(url, headers, args.clients, args.concurrency, args.warmup, api)
            # Rounds alternate the order (A B, B A, ...), so load from other processes on a
            # shared machine falls on both endpoints alike; the ratio is taken per round.
            rounds: list[dict[str, Result]] = []
            for number in range(args.rounds):
                order = labels if number % 2 == 0 else labels[::-1]
                rounds.append(
                    {
                        label: measure(
                            *targets[label], args.clients, args.concurrency, args.seconds, api
                        )
                        for label in order
                    }
                )
        finally:
            server.terminate()
            server.wait(timeout=15)
    finally:
        asyncio.run(drop_database())

    print(
        f"{args.workers} API worker process(es), {args.clients} client process(es) x "
        f"{args.concurrency} connections, {args.rounds} rounds of {args.seconds:.0f} s each"
    )
    print(
        f"{'round':<6}{'endpoint':<42} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f" {'API CPU us/req':>15}"
    )
    for number, results in enumerate(rounds, 1):
        for label in labels:
            result = results[label]
            print(
                f"{number:<6}{label:<42} {result.rps:>8.0f} {result.percentile(50):>8.1f} "
                f"{result.percentile(99):>8.1f} {result.errors:>7} {result.api_cpu_us:>15.0f}"
            )
    ratios = [results[labels[1]].rps / results[labels[0]].rps for results in rounds]
    print(
        "EHR read / plain throughput per round: "
        + ", ".join(f"{ratio:.2f}" for ratio in ratios)
        + f"; median {statistics.median(ratios):.2f} (goal >= 0.50)"
    )
    for label in labels:
        rps = statistics.median(results[label].rps for results in rounds)
        cpu_us = statistics.median(results[label].api_cpu_us for results in rounds)
        print(f"median, {label}: {rps:.0f} req/s, {cpu_us:.0f} us of API CPU per request")


if __name__ == "__main__":
    main()
