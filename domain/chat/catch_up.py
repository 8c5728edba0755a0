"""What a replica that delivers rooms live reads to catch up with them after missing some."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from domain.db import Db


async def newest_seqs(conn: Db, rooms: Iterable[UUID]) -> dict[UUID, int]:
    """Each existing room's newest seq (rooms that do not exist are left out)."""
    rows = await conn.fetch(
        "SELECT id, last_seq FROM conversations WHERE id = ANY($1)", list(rooms)
    )
    return {row["id"]: row["last_seq"] for row in rows}
