"""What joining a room reads from PostgreSQL, batched: whether the joiner is a member and, when a
replica starts hosting the room, its newest seq (one ask for both), and what a rejoining client
missed. When a replica dies its clients rejoin the others at once, thousands within a second;
concurrent reads share one statement each (`domain.batching`), and a lone join pays one
statement's round trip plus JOIN_LINGER_S."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from domain.batching import JOIN_LINGER_S, GroupCommit
from domain.chat.errors import NotAMember, RoomNotFound
from domain.chat.messages import MAX_MISSED, Message, messages_after_each
from domain.chat.posting import RoomAccess, room_access


@dataclass(frozen=True)
class JoinResult:
    """What a join read: the room's cursor, and what the client missed below it."""

    last_seq: int
    missed: list[Message]
    has_more: bool


class RoomReads:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._access: GroupCommit[tuple[UUID, UUID | None], RoomAccess | None] = GroupCommit(
            self._read_access, linger_s=JOIN_LINGER_S
        )
        # Each ask may bring MAX_MISSED + 1 rows: fewer asks per statement.
        self._missed: GroupCommit[tuple[UUID, int, int], list[Message]] = GroupCommit(
            self._read_missed, max_batch=50
        )

    async def access(self, room: UUID, user: UUID | None) -> RoomAccess | None:
        """The room's newest seq and whether `user` is a member; None when there is no such
        room."""
        return await self._access.submit((room, user))

    async def check_member(self, room: UUID, user: UUID) -> None:
        """Raise RoomNotFound or NotAMember unless `user` is a member of `room`."""
        access = await self.access(room, user)
        if access is None:
            raise RoomNotFound()
        if not access.member:
            raise NotAMember()

    async def missed(self, room: UUID, after_seq: int, up_to_seq: int) -> list[Message]:
        """Messages after_seq < seq <= up_to_seq, oldest first, at most MAX_MISSED + 1 (the
        one past the bound tells there are more)."""
        return await self._missed.submit((room, after_seq, up_to_seq))

    async def _read_access(self, asks: list[tuple[UUID, UUID | None]]) -> list[RoomAccess | None]:
        return await room_access(self._pool, asks)

    async def _read_missed(self, asks: list[tuple[UUID, int, int]]) -> list[list[Message]]:
        return await messages_after_each(self._pool, asks, limit=MAX_MISSED + 1)
