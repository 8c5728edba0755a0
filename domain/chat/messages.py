"""Chat messages: storing and numbering them (one statement for one message or a batch),
reading a room's messages, and members' read marks. Edits and deletes are in `edits`.

Every function takes an asyncpg connection or pool and runs one statement (or one short
transaction), so a message is durable by the time a function returns it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from domain.chat.errors import MessageNotFound, NotAMember
from domain.chat.posting import check_member, may_post
from domain.db import Db
from domain.identity import Role
from domain.identity.tokens import Principal

MAX_MISSED = 500
MAX_HISTORY_PAGE = 100


class Sender(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str
    role: Role


class Message(BaseModel):
    """A chat message exactly as CONTRACT.md shows it to clients."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    room: UUID
    seq: int
    client_id: str
    sender: Sender
    body: str
    ts: datetime
    edited_at: datetime | None
    deleted: bool

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# What a member reads; `edits` returns messages through `get_message` too.
_SELECT = """SELECT m.id, m.room, m.seq, m.client_id, m.body, m.created_at, m.edited_at,
                    m.deleted_at, m.sender_id, u.name AS sender_name, u.role AS sender_role
               FROM messages m JOIN users u ON u.id = m.sender_id"""


def _from_row(row: asyncpg.Record) -> Message:
    return Message(
        id=row["id"],
        room=row["room"],
        seq=row["seq"],
        client_id=row["client_id"],
        sender=Sender(id=row["sender_id"], name=row["sender_name"], role=row["sender_role"]),
        body=row["body"],
        ts=row["created_at"],
        edited_at=row["edited_at"],
        deleted=row["deleted_at"] is not None,
    )


class NewMessage(NamedTuple):
    room: UUID
    sender: Principal
    client_id: str
    body: str


async def store_messages(conn: Db, batch: Sequence[NewMessage]) -> list[Message | None]:
    """Store a batch of new messages in ONE statement (one commit): group commit for the
    senders of every room at once. Each room's seqs are handed out in batch order.

    Membership and mutes are checked, and the seq counters, the rows and the senders' read
    marks move, together or not at all. The rooms' counter rows are locked in id order first,
    so concurrent batches never deadlock and concurrent senders on any replica are ordered.
    A message this statement did not store (a retried client_id, a non-member, a mute, an
    unknown room) comes back as None: `store_message` gives its answer one by one.
    """
    rows = await conn.fetch(
        f"""WITH input AS (
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[])
                        WITH ORDINALITY AS i(room, sender, client_id, body, ord)),
           locked AS (
               SELECT id FROM conversations WHERE id IN (SELECT room FROM input)
                ORDER BY id FOR UPDATE),
           fresh AS (
               SELECT DISTINCT ON (i.room, i.sender, i.client_id) i.*
                 FROM input i
                WHERE i.room IN (SELECT id FROM locked)
                  AND {may_post("i.room", "i.sender")}
                  AND NOT EXISTS (SELECT 1 FROM messages m
                                   WHERE m.room = i.room AND m.sender_id = i.sender
                                     AND m.client_id = i.client_id)
                ORDER BY i.room, i.sender, i.client_id, i.ord),
           numbered AS (
               SELECT f.*, row_number() OVER (PARTITION BY f.room ORDER BY f.ord) AS k,
                      count(*) OVER (PARTITION BY f.room) AS n
                 FROM fresh f),
           bumped AS (
               UPDATE conversations c SET last_seq = c.last_seq + r.n
                 FROM (SELECT room, max(n) AS n FROM numbered GROUP BY room) r
                WHERE c.id = r.room
               RETURNING c.id, c.last_seq),
           stored AS (
               INSERT INTO messages (room, seq, client_id, sender_id, body)
               SELECT nb.room, b.last_seq - nb.n + nb.k, nb.client_id, nb.sender, nb.body
                 FROM numbered nb JOIN bumped b ON b.id = nb.room
               RETURNING id, room, seq, client_id, sender_id, created_at),
           _read AS (
               UPDATE conversation_members cm SET last_read_seq = GREATEST(cm.last_read_seq, s.seq)
                 FROM (SELECT room, sender_id, max(seq) AS seq FROM stored
                        GROUP BY room, sender_id) s
                WHERE cm.conversation_id = s.room AND cm.user_id = s.sender_id)
           SELECT id, room, seq, client_id, sender_id, created_at FROM stored""",
        [item.room for item in batch],
        [item.sender.user_id for item in batch],
        [item.client_id for item in batch],
        [item.body for item in batch],
    )
    stored = {(row["room"], row["sender_id"], row["client_id"]): row for row in rows}
    results: list[Message | None] = []
    for item in batch:
        row = stored.pop((item.room, item.sender.user_id, item.client_id), None)
        results.append(
            None
            if row is None
            else Message(
                id=row["id"],
                room=item.room,
                seq=row["seq"],
                client_id=item.client_id,
                sender=Sender(id=item.sender.user_id, name=item.sender.name, role=item.sender.role),
                body=item.body,
                ts=row["created_at"],
                edited_at=None,
                deleted=False,
            )
        )
    return results


async def store_message(
    conn: Db,
    room: UUID,
    sender: Principal,
    client_id: str,
    body: str,
) -> tuple[Message, bool]:
    """Store one message, as a batch of one; return it and whether it is new.

    A client_id the sender already used in this room returns the stored message; a refused
    send raises the rule it broke (RoomNotFound, NotAMember, Muted).
    """
    try:
        [stored] = await store_messages(conn, [NewMessage(room, sender, client_id, body)])
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "messages_idempotency_key":
            raise
        stored = None  # the same client_id raced in on another connection
    if stored is not None:
        return stored, True
    await check_member(conn, room, sender.user_id, posting=True)
    existing = await conn.fetchrow(
        _SELECT + " WHERE m.room = $1 AND m.sender_id = $2 AND m.client_id = $3",
        room,
        sender.user_id,
        client_id,
    )
    if existing is not None:
        return _from_row(existing), False
    # A mute that expired between the two statements: nothing stands in the way now.
    return await store_message(conn, room, sender, client_id, body)


async def messages_after(
    conn: Db,
    room: UUID,
    after_seq: int,
    up_to_seq: int,
    limit: int = MAX_MISSED,
) -> list[Message]:
    """Messages with after_seq < seq <= up_to_seq, oldest first, at most `limit`."""
    [found] = await messages_after_each(conn, [(room, after_seq, up_to_seq)], limit)
    return found


async def messages_after_each(
    conn: Db, asks: Sequence[tuple[UUID, int, int]], limit: int = MAX_MISSED
) -> list[list[Message]]:
    """`messages_after` for each (room, after_seq, up_to_seq), in one statement: a storm of
    clients rejoining with since_seq asks for thousands at once."""
    rows = await conn.fetch(
        f"""SELECT a.n, found.*
              FROM unnest($1::uuid[], $2::bigint[], $3::bigint[])
                   WITH ORDINALITY AS a(room, after_seq, up_to_seq, n)
             CROSS JOIN LATERAL ({_SELECT}
                    WHERE m.room = a.room AND m.seq > a.after_seq AND m.seq <= a.up_to_seq
                    ORDER BY m.seq LIMIT $4) AS found
             ORDER BY a.n, found.seq""",
        [room for room, _, _ in asks],
        [after for _, after, _ in asks],
        [up_to for _, _, up_to in asks],
        limit,
    )
    found: list[list[Message]] = [[] for _ in asks]
    for row in rows:
        found[row["n"] - 1].append(_from_row(row))
    return found


async def history(
    conn: Db, room: UUID, before_seq: int | None, limit: int
) -> tuple[list[Message], bool]:
    """Up to `limit` messages before `before_seq` (or the newest), oldest first, and has_more."""
    rows = await conn.fetch(
        _SELECT + " WHERE m.room = $1 AND ($2::bigint IS NULL OR m.seq < $2)"
        " ORDER BY m.seq DESC LIMIT $3",
        room,
        before_seq,
        limit + 1,
    )
    page = [_from_row(row) for row in reversed(rows[:limit])]
    return page, len(rows) > limit


async def mark_read(conn: Db, room: UUID, user_id: UUID, seq: int) -> int:
    """Move the member's read mark forward to `seq` (never back, never past the newest)."""
    value = await conn.fetchval(
        """UPDATE conversation_members cm
              SET last_read_seq = GREATEST(cm.last_read_seq, LEAST($3, c.last_seq))
             FROM conversations c
            WHERE cm.conversation_id = $1 AND cm.user_id = $2 AND c.id = cm.conversation_id
        RETURNING cm.last_read_seq""",
        room,
        user_id,
        seq,
    )
    if value is None:
        raise NotAMember()
    return int(value)


async def get_message(conn: Db, room: UUID, message_id: UUID) -> Message:
    """The message as members see it now (deleted ones too, redacted)."""
    row = await conn.fetchrow(_SELECT + " WHERE m.room = $1 AND m.id = $2", room, message_id)
    if row is None:
        raise MessageNotFound()
    return _from_row(row)
