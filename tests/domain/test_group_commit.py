"""store_messages: many sends, many rooms, one statement; seqs gapless and in batch order."""

from __future__ import annotations

from typing import Any

import asyncpg

from domain.chat.conversations import create_conversation
from domain.chat.messages import NewMessage, store_message, store_messages
from domain.identity import Role
from domain.identity.tokens import Principal


def principal(member: Any) -> Principal:
    user = member[0]
    return Principal(user_id=user.id, name=user.name, role=user.role)


async def test_a_batch_numbers_each_room_in_order_and_leaves_the_rest_to_the_single_path(
    pool: asyncpg.Pool, room: Any, make_user: Any
) -> None:
    room_id, owner, vet = room
    stranger = await make_user(Role.owner)
    async with pool.acquire() as conn:
        other_room = (await create_conversation(conn, owner[0].id, [], "other")).id
    alice, bob, eve = principal(owner), principal(vet), principal(stranger)
    await store_message(pool, room_id, alice, "earlier", "already stored")

    batch = [
        NewMessage(room_id, alice, "a1", "one"),
        NewMessage(other_room, alice, "o1", "elsewhere"),
        NewMessage(room_id, bob, "b1", "two"),
        NewMessage(room_id, alice, "a1", "same client id again"),
        NewMessage(room_id, eve, "e1", "not a member"),
        NewMessage(room_id, alice, "earlier", "retried"),
        NewMessage(room_id, bob, "b2", "three"),
    ]
    results = await store_messages(pool, batch)
    assert [(r.room, r.seq, r.body) if r else None for r in results] == [
        (room_id, 2, "one"),
        (other_room, 1, "elsewhere"),
        (room_id, 3, "two"),
        None,
        None,
        None,
        (room_id, 4, "three"),
    ]
    seqs = await pool.fetch("SELECT seq FROM messages WHERE room = $1 ORDER BY seq", room_id)
    assert [row["seq"] for row in seqs] == [1, 2, 3, 4]
    assert await pool.fetchval("SELECT last_seq FROM conversations WHERE id = $1", room_id) == 4
    read = await pool.fetchval(
        "SELECT last_read_seq FROM conversation_members WHERE conversation_id = $1"
        " AND user_id = $2",
        room_id,
        vet[0].id,
    )
    assert read == 4
