"""The two kinds of Redis channel a room's publications go on: sharded (SSUBSCRIBE /
SPUBLISH, Redis 7, the only kind Redis Cluster routes by slot) or classic (SUBSCRIBE /
PUBLISH, before 7). Which one is asked of the server each time a listener (re)connects."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from domain.chat.room_channel import sharded_pubsub


@dataclass(frozen=True)
class Flavour:
    """One kind of channel: redis-py's PubSub methods for it (also the types of their
    replies), the command that publishes on it, and the type of a publication received."""

    subscribe: str
    unsubscribe: str
    publish: str
    message: str


SHARDED = Flavour("ssubscribe", "sunsubscribe", "SPUBLISH", "smessage")
CLASSIC = Flavour("subscribe", "unsubscribe", "PUBLISH", "message")


async def detect_flavour(redis: aioredis.Redis) -> Flavour:
    """Sharded pub/sub from Redis 7 on, classic before."""
    return SHARDED if await sharded_pubsub(redis) else CLASSIC
