"""The posting rules, written once for sending and editing: who may post in a room now (a
member, not muted) and what a body may be; and why a refused post was refused."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple
from uuid import UUID

from domain.chat.errors import Muted, NotAMember, RoomNotFound
from domain.db import Db
from domain.errors import Invalid, TooLarge

MAX_BODY_CHARS = 4000


def checked_body(body: str) -> str:
    """The body, if a message may carry it."""
    if len(body) > MAX_BODY_CHARS:
        raise TooLarge(f"body is over {MAX_BODY_CHARS} characters")
    if not body.strip():
        raise Invalid("body is empty")
    return body


def may_post(room: str, user: str) -> str:
    """SQL that is true when `user` may post in `room` now: a member, not muted (`room` and
    `user` are SQL expressions), for statements that check the rule as they write."""
    return f"""(EXISTS (SELECT 1 FROM conversation_members
                          WHERE conversation_id = {room} AND user_id = {user})
                AND NOT EXISTS (SELECT 1 FROM room_mutes
                                 WHERE room = {room} AND user_id = {user} AND until > now()))"""


async def check_member(conn: Db, room: UUID, user: UUID, *, posting: bool = False) -> None:
    """Raise RoomNotFound or NotAMember unless `user` is a member of `room`; when `posting`,
    Muted too while a moderator's mute lasts. What a statement that checked `may_post` and
    wrote nothing tells its caller."""
    row = await conn.fetchrow(
        """SELECT EXISTS (SELECT 1 FROM conversation_members
                           WHERE conversation_id = c.id AND user_id = $2) AS member,
                  (SELECT until FROM room_mutes
                    WHERE room = c.id AND user_id = $2 AND until > now()) AS muted_until
             FROM conversations c WHERE c.id = $1""",
        room,
        user,
    )
    if row is None:
        raise RoomNotFound()
    if not row["member"]:
        raise NotAMember()
    if posting and row["muted_until"] is not None:
        raise Muted(row["muted_until"])


class RoomAccess(NamedTuple):
    """A room's newest seq, and whether the user asked about is a member of it."""

    last_seq: int
    member: bool


async def room_access(
    conn: Db, asks: Sequence[tuple[UUID, UUID | None]]
) -> list[RoomAccess | None]:
    """For each (room, user): the room's newest seq and whether the user (False for None) is a
    member; None when the room does not exist. One statement for many asks, as a storm of
    reconnecting clients joins: a room's first join here asks for its cursor and its own
    membership at once."""
    rows = await conn.fetch(
        """SELECT c.last_seq,
                  EXISTS (SELECT 1 FROM conversation_members m
                           WHERE m.conversation_id = p.room AND m.user_id = p.user_id) AS member
             FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS p(room, user_id, n)
             LEFT JOIN conversations c ON c.id = p.room
            ORDER BY p.n""",
        [room for room, _ in asks],
        [user for _, user in asks],
    )
    return [
        None if row["last_seq"] is None else RoomAccess(row["last_seq"], row["member"])
        for row in rows
    ]
