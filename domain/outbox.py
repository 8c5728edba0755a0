"""The transactional outbox: domain events are written in the transaction of the change they
announce, and a relay publishes them to Redis afterwards, at least once, in order."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from domain.db import Conn
from domain.redis_client import RedisClient

# Also hands each event (topic, payload) on where it is needed beyond the events channel.
EventRoute = Callable[[str, dict[str, Any]], Awaitable[None]]


def events_channel(redis_namespace: str) -> str:
    return f"{redis_namespace}:events"


async def append(conn: Conn, topic: str, payload: dict[str, Any]) -> None:
    """Record a domain event; call inside the transaction that makes it true."""
    await conn.execute(
        "INSERT INTO outbox (topic, payload) VALUES ($1, $2::jsonb)", topic, json.dumps(payload)
    )


async def relay(
    conn: Conn, redis: RedisClient, channel: str, route: EventRoute, batch: int = 100
) -> int:
    """Publish up to `batch` unsent events, oldest first, to `channel` and through `route`,
    and mark them sent; how many.

    Rows are locked (SKIP LOCKED), so relays on many replicas never publish one event twice
    at the same time; an event is marked sent only after Redis took it."""
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT id, topic, payload::text AS payload FROM outbox WHERE sent_at IS NULL "
            "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            batch,
        )
        for row in rows:
            message = {
                "id": row["id"],
                "topic": row["topic"],
                "payload": json.loads(row["payload"]),
            }
            await redis.publish(channel, json.dumps(message))
            await route(row["topic"], message["payload"])
        await conn.execute(
            "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
            [row["id"] for row in rows],
        )
    return len(rows)
