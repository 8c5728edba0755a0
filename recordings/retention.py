"""Retention: a recording's media is deleted from S3 once it stopped more than the retention
ago (RECORDING_RETENTION_DAYS, five years by default), unless an admin put it under legal hold.
Its row stays as a tombstone (`purged_at` set; downloads then answer 404), with its segments'
sizes and hashes, so the medical record still says a recording existed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

from domain.db import Conn

_DELETE_BATCH = 1000  # S3's DeleteObjects takes at most 1000 keys


async def purge_expired(pool: asyncpg.Pool, s3: Any, bucket: str, retention: timedelta) -> int:
    """Delete the media of every recording past `retention`; how many recordings were purged.
    Each is purged holding its row lock, so a legal hold placed meanwhile waits and then finds
    it purged, or lands first and keeps it; objects go before the row is marked, so a purge
    cut short is finished by the next."""
    due = await pool.fetch(
        """SELECT id FROM recordings
            WHERE purged_at IS NULL AND NOT legal_hold
              AND state NOT IN ('recording', 'paused') AND stopped_at < now() - $1::interval""",
        retention,
    )
    purged = 0
    for row in due:
        async with pool.acquire() as conn, conn.transaction():
            if await _purge(conn, s3, bucket, row["id"]):
                purged += 1
    return purged


async def _purge(conn: Conn, s3: Any, bucket: str, recording_id: UUID) -> bool:
    still_due = await conn.fetchval(
        """SELECT purged_at IS NULL AND NOT legal_hold FROM recordings WHERE id = $1
            FOR UPDATE""",
        recording_id,
    )
    if not still_due:
        return False
    keys = await conn.fetch(
        """SELECT object_key FROM recording_segments WHERE recording_id = $1
           UNION SELECT object_key FROM recording_files WHERE recording_id = $1
           UNION SELECT object_key FROM recording_egresses WHERE recording_id = $1""",
        recording_id,
    )
    names = [key["object_key"] for key in keys]
    for start in range(0, len(names), _DELETE_BATCH):
        batch = [{"Key": name} for name in names[start : start + _DELETE_BATCH]]
        await s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    await conn.execute("UPDATE recordings SET purged_at = now() WHERE id = $1", recording_id)
    return True
