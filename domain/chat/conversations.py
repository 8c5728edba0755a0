"""Conversations: chat rooms and their members. A conversation's id is its chat room.

A member may leave; the conversation and its messages stay, even with no members left.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain import outbox
from domain.chat.errors import UnknownUsers
from domain.db import Conn, Db
from domain.errors import NotFound
from domain.rate_limits import Budget

# The domain event that tells the hub to take a member's live sockets out of the room
# (`domain.chat.room_channel.relay_to_room`), and what they are told.
MEMBER_LEFT = "conversation.member_left"
LEFT_REASON = "you left the conversation"
CREATION_WINDOW_S = 60 * 60


class Conversation(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    member_ids: list[UUID]
    title: str | None


class ConversationSummary(Conversation):
    """A conversation as one member sees it in their list."""

    last_seq: int
    unread: int


def creation_budget(user_id: UUID, per_hour: int) -> Budget:
    """The conversations one user may create per hour."""
    return Budget(
        f"conversations:create:{user_id}",
        per_hour,
        CREATION_WINDOW_S,
        "too many conversations created; try again later",
    )


async def create_conversation(
    conn: Conn, creator_id: UUID, member_ids: Iterable[UUID], title: str | None
) -> Conversation:
    """Create a conversation; the creator is always a member. Runs in one transaction."""
    members = sorted({creator_id, *member_ids})
    async with conn.transaction():
        known = {
            row["id"]
            for row in await conn.fetch("SELECT id FROM users WHERE id = ANY($1)", members)
        }
        if missing := set(members) - known:
            raise UnknownUsers(missing)
        conversation_id: UUID = await conn.fetchval(
            "INSERT INTO conversations (title, created_by) VALUES ($1, $2) RETURNING id",
            title,
            creator_id,
        )
        await conn.executemany(
            "INSERT INTO conversation_members (conversation_id, user_id) VALUES ($1, $2)",
            [(conversation_id, member) for member in members],
        )
    return Conversation(id=conversation_id, member_ids=members, title=title)


async def list_conversations(conn: Db, user_id: UUID) -> list[ConversationSummary]:
    """The user's conversations, most recently created first, with their unread counts."""
    rows = await conn.fetch(
        """SELECT c.id, c.title, c.last_seq, me.last_read_seq,
                  array_agg(m.user_id ORDER BY m.user_id) AS member_ids
             FROM conversation_members me
             JOIN conversations c ON c.id = me.conversation_id
             JOIN conversation_members m ON m.conversation_id = c.id
            WHERE me.user_id = $1
            GROUP BY c.id, me.last_read_seq
            ORDER BY c.created_at DESC, c.id""",
        user_id,
    )
    return [
        ConversationSummary(
            id=row["id"],
            title=row["title"],
            member_ids=list(row["member_ids"]),
            last_seq=row["last_seq"],
            unread=max(0, row["last_seq"] - row["last_read_seq"]),
        )
        for row in rows
    ]


async def is_member(conn: Db, conversation_id: UUID, user_id: UUID) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
        conversation_id,
        user_id,
    )
    return found is not None


async def leave_conversation(conn: Conn, conversation_id: UUID, user_id: UUID) -> None:
    """Take the user out of the conversation; NotFound when they are not a member."""
    async with conn.transaction():
        left = await conn.fetchval(
            "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2 "
            "RETURNING 1",
            conversation_id,
            user_id,
        )
        if left is None:
            raise NotFound("no such conversation")
        await outbox.append(
            conn, MEMBER_LEFT, {"conversation_id": str(conversation_id), "user_id": str(user_id)}
        )


async def members_of(conn: Db, conversation_ids: list[UUID]) -> dict[UUID, set[UUID]]:
    """The members of each of these conversations (those with none are absent)."""
    rows = await conn.fetch(
        "SELECT conversation_id, user_id FROM conversation_members "
        "WHERE conversation_id = ANY($1::uuid[])",
        conversation_ids,
    )
    members: dict[UUID, set[UUID]] = {}
    for row in rows:
        members.setdefault(row["conversation_id"], set()).add(row["user_id"])
    return members
