"""Chat sends, group-committed: concurrent sends of every room share one statement and one
commit (see `domain.batching`), so a busy room is not capped at one fsync per message."""

from __future__ import annotations

import asyncpg

from domain.batching import GroupCommit
from domain.chat.messages import Message, NewMessage, store_message, store_messages


class GroupCommitStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._batches: GroupCommit[NewMessage, tuple[Message, bool]] = GroupCommit(self._write)

    async def store(self, message: NewMessage) -> tuple[Message, bool]:
        """Store a message; return it and whether it is new (see `store_message`)."""
        return await self._batches.submit(message)

    async def _write(self, batch: list[NewMessage]) -> list[tuple[Message, bool] | Exception]:
        try:
            stored: list[Message | None] = await store_messages(self._pool, batch)
        except asyncpg.UniqueViolationError:
            # A retried client_id raced in from another replica: answer one by one.
            stored = [None] * len(batch)
        outcomes: list[tuple[Message, bool] | Exception] = []
        for message, result in zip(batch, stored, strict=True):
            if result is not None:
                outcomes.append((result, True))
                continue
            try:  # refused or already stored: the one-by-one path says which
                outcomes.append(
                    await store_message(
                        self._pool, message.room, message.sender, message.client_id, message.body
                    )
                )
            except Exception as exc:
                outcomes.append(exc)
        return outcomes
