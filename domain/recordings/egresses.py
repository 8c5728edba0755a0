"""The LiveKit egresses of a recording: started by the hub, ended by LiveKit's webhook."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class Egress:
    egress_id: str
    user_id: UUID


async def add(
    conn: asyncpg.Connection | asyncpg.Pool,
    egress_id: str,
    recording_id: UUID,
    user_id: UUID,
    object_key: str,
) -> None:
    await conn.execute(
        """INSERT INTO recording_egresses (egress_id, recording_id, user_id, object_key)
           VALUES ($1, $2, $3, $4)""",
        egress_id,
        recording_id,
        user_id,
        object_key,
    )


async def running(conn: asyncpg.Connection | asyncpg.Pool, recording_id: UUID) -> list[Egress]:
    """The recording's egresses that have not ended and that the hub has not asked to stop."""
    rows = await conn.fetch(
        """SELECT egress_id, user_id FROM recording_egresses
            WHERE recording_id = $1 AND status = 'active' AND stop_asked_at IS NULL
            ORDER BY started_at""",
        recording_id,
    )
    return [Egress(row["egress_id"], row["user_id"]) for row in rows]


async def stop_asked(conn: asyncpg.Connection | asyncpg.Pool, egress_id: str) -> None:
    await conn.execute(
        "UPDATE recording_egresses SET stop_asked_at = now() WHERE egress_id = $1", egress_id
    )


async def ended(
    conn: asyncpg.Connection | asyncpg.Pool,
    egress_id: str,
    *,
    complete: bool,
    size_bytes: int | None,
    duration_s: float | None,
    error: str | None,
) -> bool:
    """Record how an egress ended (once: a repeated webhook changes nothing); whether it was
    one of ours."""
    status = await conn.fetchval(
        """UPDATE recording_egresses
              SET status = $2, ended_at = now(), size_bytes = $3, duration_s = $4, error = $5
            WHERE egress_id = $1 AND status = 'active'
        RETURNING status""",
        egress_id,
        "complete" if complete else "failed",
        size_bytes,
        duration_s,
        error,
    )
    if status is not None:
        return True
    return bool(
        await conn.fetchval("SELECT 1 FROM recording_egresses WHERE egress_id = $1", egress_id)
    )
