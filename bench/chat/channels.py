"""CPU one hub replica spends on its room channels when ROOMS rooms come or go at once: all
subscribed together (a crowd joining), all left together (a replica draining), and all
subscribed again after the listener's connection is lost (a Redis failover or restart).

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m bench.chat.channels --rooms 1000 5000

The channels are of a namespace of the run's own; nothing is left subscribed afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID, uuid4

import redis.asyncio as aioredis
from rich.console import Console

from bench.chat.redis_bench import figures_table, rooms_and_redis_url
from realtime.room_channels import RoomChannels

T = TypeVar("T")
SETTLE_S = 0.2  # after a phase, for the listener to read what Redis still sends


@dataclass(frozen=True)
class ChannelCosts:
    """CPU ms of the replica's process per phase, all ROOMS at once."""

    subscribe: float
    unsubscribe: float
    resubscribe: float


async def _cpu_ms(work: Awaitable[T]) -> tuple[float, T]:
    started = time.process_time()
    result = await work
    return 1000 * (time.process_time() - started), result


async def _kill_listener(redis: aioredis.Redis, name: str) -> None:
    for client in await redis.client_list():
        if client["name"] == name:
            await redis.client_kill_filter(_id=client["id"])


async def channel_costs(redis_url: str, rooms: int, prefix: str) -> ChannelCosts:
    redis = aioredis.Redis.from_url(redis_url)
    back: set[UUID] = set()

    async def ignore(_: bytes) -> None:
        pass

    channels = RoomChannels(redis, prefix, "bench", ignore, back.add)
    await channels.start()
    try:
        while not channels.listening:
            await asyncio.sleep(0.01)
        hosted = [uuid4() for _ in range(rooms)]
        subscribe, confirmed = await _cpu_ms(
            asyncio.gather(*(channels.subscribe(room) for room in hosted))
        )
        if not all(confirmed):
            raise RuntimeError("a subscription was not confirmed")
        await asyncio.sleep(SETTLE_S)

        async def all_back() -> None:
            await _kill_listener(redis, channels.listener_name)
            while len(back) < rooms:
                await asyncio.sleep(0.005)

        resubscribe, _ = await _cpu_ms(all_back())
        await asyncio.sleep(SETTLE_S)
        unsubscribe, _ = await _cpu_ms(
            asyncio.gather(*(channels.unsubscribe(room) for room in hosted))
        )
        await asyncio.sleep(SETTLE_S)
        return ChannelCosts(subscribe, unsubscribe, resubscribe)
    finally:
        await channels.stop()
        await redis.aclose()


def main() -> None:
    rooms_asked, redis_url = rooms_and_redis_url(__doc__ or "", [1000, 5000])
    logging.getLogger("realtime.room_channels").setLevel(logging.ERROR)  # the loss is planned
    table = figures_table(
        "room channels of one replica: CPU ms for all rooms at once",
        ("rooms", "subscribe", "unsubscribe", "resubscribe after a lost connection"),
    )
    for rooms in rooms_asked:
        costs = asyncio.run(channel_costs(redis_url, rooms, f"bench-channels-{uuid4().hex[:8]}"))
        table.add_row(
            f"{rooms:,}",
            *(f"{ms:.0f}" for ms in (costs.subscribe, costs.unsubscribe, costs.resubscribe)),
        )
    Console().print(table)


if __name__ == "__main__":
    main()
