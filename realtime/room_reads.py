"""What joining a room reads from PostgreSQL, batched: a room's newest seq when a replica
starts hosting it, and what a rejoining client missed. When a replica dies its clients rejoin
the others at once, thousands within a second; concurrent reads share one statement each
(`domain.batching`), and a lone join pays what a single statement costs."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from domain.batching import GroupCommit
from domain.chat.messages import MAX_MISSED, Message, last_seqs, messages_after_each


@dataclass(frozen=True)
class JoinResult:
    """What a join read: the room's cursor, and what the client missed below it."""

    last_seq: int
    missed: list[Message]
    has_more: bool


class RoomReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._newest: GroupCommit[UUID, int | None] = GroupCommit(self._read_newest)
        # Each ask may bring MAX_MISSED + 1 rows: fewer asks per statement.
        self._missed: GroupCommit[tuple[UUID, int, int], list[Message]] = GroupCommit(
            self._read_missed, max_batch=50
        )

    async def newest_seq(self, room: UUID) -> int | None:
        """The room's newest seq, None when there is no such room."""
        return await self._newest.submit(room)

    async def missed(self, room: UUID, after_seq: int, up_to_seq: int) -> list[Message]:
        """Messages after_seq < seq <= up_to_seq, oldest first, at most MAX_MISSED + 1 (the
        one past the bound tells there are more)."""
        return await self._missed.submit((room, after_seq, up_to_seq))

    async def _read_newest(self, rooms: list[UUID]) -> list[int | None]:
        newest = await last_seqs(self._pool, rooms)
        return [newest.get(room) for room in rooms]

    async def _read_missed(self, asks: list[tuple[UUID, int, int]]) -> list[list[Message]]:
        return await messages_after_each(self._pool, asks, limit=MAX_MISSED + 1)
