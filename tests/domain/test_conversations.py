from uuid import uuid4

import asyncpg
import pytest

from domain.chat.conversations import (
    create_conversation,
    is_member,
    leave_conversation,
    list_conversations,
)
from domain.chat.errors import NotAMember, UnknownUsers
from domain.chat.messages import mark_read
from domain.identity import Role


async def test_the_creator_is_always_a_member(pool: asyncpg.Pool, make_user) -> None:  # type: ignore[no-untyped-def]
    owner, _ = await make_user(Role.owner)
    vet, _ = await make_user(Role.vet)
    async with pool.acquire() as conn:
        conversation = await create_conversation(conn, owner.id, [vet.id, vet.id], "Rex's cough")
    assert conversation.member_ids == sorted([owner.id, vet.id])
    assert await is_member(pool, conversation.id, owner.id)
    assert await is_member(pool, conversation.id, vet.id)
    listed = await list_conversations(pool, vet.id)
    assert [(c.id, c.title, c.last_seq, c.unread) for c in listed] == [
        (conversation.id, "Rex's cough", 0, 0)
    ]


async def test_unknown_members_are_refused_and_nothing_is_created(
    pool: asyncpg.Pool,
    make_user,  # type: ignore[no-untyped-def]
) -> None:
    owner, _ = await make_user(Role.owner)
    ghost = uuid4()
    async with pool.acquire() as conn:
        with pytest.raises(UnknownUsers) as raised:
            await create_conversation(conn, owner.id, [ghost], None)
    assert raised.value.user_ids == [ghost]
    assert await list_conversations(pool, owner.id) == []


async def test_a_read_mark_after_leaving_is_refused_as_not_a_member(
    pool: asyncpg.Pool,
    make_user,  # type: ignore[no-untyped-def]
) -> None:
    owner, _ = await make_user(Role.owner)
    vet, _ = await make_user(Role.vet)
    async with pool.acquire() as conn:
        conversation = await create_conversation(conn, owner.id, [vet.id], None)
        await leave_conversation(conn, conversation.id, vet.id)
    with pytest.raises(NotAMember):
        await mark_read(pool, conversation.id, vet.id, 1)
    assert await mark_read(pool, conversation.id, owner.id, 1) == 0
