"""CPU one hub replica spends on a presence reaping round (every second, on every replica)
while the deployment holds leases in ROOMS rooms, none of them expired: the steady state.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m bench.chat.reaping --rooms 5000 20000

Another replica's leases (two users per room) are written under a namespace of the run's own,
which is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import time
from uuid import UUID, uuid4

from rich.console import Console

from bench.chat.redis_bench import figures_table, rooms_and_redis_url
from pawhub.resources import open_redis
from realtime.presence import Presence

ROUNDS = 5


async def _went_offline(room: UUID, user: UUID) -> None:
    raise AssertionError(f"no lease has expired, yet {user} was reaped in {room}")


async def reaping_round_ms(redis_url: str, rooms: int, prefix: str) -> tuple[float, float]:
    """CPU and wall ms of one reaping round, the mean of ROUNDS; the leases are written under
    `prefix`, and deleted."""
    redis = open_redis(redis_url)
    holder = Presence(redis, prefix, "holder", _went_offline)
    reaper = Presence(redis, prefix, "reaper", _went_offline)
    held = [uuid4() for _ in range(rooms)]
    try:
        for device in ("phone", "laptop"):
            await asyncio.gather(*(holder.arrive(room, uuid4(), device) for room in held))
        await reaper._reap()  # scripts loaded, connections open
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(ROUNDS):
            await reaper._reap()
        return (
            1000 * (time.process_time() - cpu) / ROUNDS,
            1000 * (time.perf_counter() - wall) / ROUNDS,
        )
    finally:
        keys = [key async for key in redis.scan_iter(f"{prefix}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await redis.delete(*keys[start : start + 1000])
        await redis.aclose()


def main() -> None:
    rooms_asked, redis_url = rooms_and_redis_url(__doc__ or "", [5000, 20000])
    table = figures_table(
        "one presence reaping round, one replica", ("rooms with leases", "CPU ms", "wall ms")
    )
    for rooms in rooms_asked:
        prefix = f"bench-reaping-{uuid4().hex[:8]}"
        cpu_ms, wall_ms = asyncio.run(reaping_round_ms(redis_url, rooms, prefix))
        table.add_row(f"{rooms:,}", f"{cpu_ms:.1f}", f"{wall_ms:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
