"""The reads a storm of joins shares: membership with the newest seq, and missed messages, each
for many rooms in one statement, each answer where its ask was."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import asyncpg

from domain.chat.conversations import create_conversation
from domain.chat.messages import NewMessage, messages_after_each, store_messages
from domain.chat.posting import RoomAccess, room_access
from domain.identity import Role
from domain.identity.tokens import Principal


async def test_many_rooms_answer_in_one_statement_each_ask_in_its_place(
    pool: asyncpg.Pool, room: Any, make_user: Any
) -> None:
    room_id, owner, vet = room
    stranger = (await make_user(Role.owner))[0]
    async with pool.acquire() as conn:
        other_room = (await create_conversation(conn, owner[0].id, [], "other")).id
    alice = Principal(user_id=owner[0].id, name=owner[0].name, role=owner[0].role)
    await store_messages(
        pool,
        [NewMessage(room_id, alice, f"r{n}", f"room {n}") for n in range(1, 6)]
        + [NewMessage(other_room, alice, f"o{n}", f"other {n}") for n in range(1, 4)],
    )
    nowhere = uuid4()

    assert await room_access(
        pool,
        [
            (room_id, vet[0].id),
            (other_room, vet[0].id),
            (nowhere, owner[0].id),
            (room_id, stranger.id),
            (other_room, owner[0].id),
            (room_id, None),  # a watcher's open: the cursor only
        ],
    ) == [
        RoomAccess(5, True),
        RoomAccess(3, False),
        None,
        RoomAccess(5, False),
        RoomAccess(3, True),
        RoomAccess(5, False),
    ]

    found = await messages_after_each(
        pool,
        [(room_id, 1, 4), (other_room, 0, 3), (room_id, 4, 4), (nowhere, 0, 9), (room_id, 0, 5)],
        limit=3,
    )
    assert [[(m.room, m.seq, m.body) for m in each] for each in found] == [
        [(room_id, 2, "room 2"), (room_id, 3, "room 3"), (room_id, 4, "room 4")],
        [(other_room, 1, "other 1"), (other_room, 2, "other 2"), (other_room, 3, "other 3")],
        [],
        [],
        [(room_id, 1, "room 1"), (room_id, 2, "room 2"), (room_id, 3, "room 3")],
    ]
