"""Consults: the meeting a video booking opens, its chat room and who may join its call.

Who may join a consult's call, and as what: `role_in` (the /rtc signaling service asks it on
every join) or `consult_participant` when only the database is at hand.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from domain.chat.conversations import create_conversation
from domain.errors import Forbidden, NotFound


class ParticipantRole(StrEnum):
    owner = "owner"
    vet = "vet"
    invited = "invited"


class Participant(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: UUID
    role: ParticipantRole


class Consult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    booking_id: UUID
    room: UUID
    vet_id: UUID
    owner_id: UUID
    pet_id: UUID
    starts_at: datetime
    ends_at: datetime
    booking_status: str
    participants: list[Participant]


async def open_consult(
    conn: asyncpg.Connection,
    booking_id: UUID,
    owner_id: UUID,
    vet_id: UUID,
    pet_id: UUID,
    title: str,
) -> UUID:
    """Create the consult of a booking with its chat room; call inside the booking's
    transaction so that a booking never exists without them."""
    room = await create_conversation(conn, owner_id, [vet_id], title)
    consult_id: UUID = await conn.fetchval(
        "INSERT INTO consults (booking_id, room, vet_id, owner_id, pet_id) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id",
        booking_id,
        room.id,
        vet_id,
        owner_id,
        pet_id,
    )
    await conn.executemany(
        "INSERT INTO consult_participants (consult_id, user_id, role) VALUES ($1, $2, $3)",
        [(consult_id, owner_id, ParticipantRole.owner), (consult_id, vet_id, ParticipantRole.vet)],
    )
    return consult_id


async def get_consult(conn: asyncpg.Connection | asyncpg.Pool, consult_id: UUID) -> Consult | None:
    row = await conn.fetchrow(
        """SELECT c.id, c.booking_id, c.room, c.vet_id, c.owner_id, c.pet_id,
                  b.starts_at, b.ends_at, b.status AS booking_status,
                  array_agg(p.user_id ORDER BY p.added_at, p.user_id) AS user_ids,
                  array_agg(p.role ORDER BY p.added_at, p.user_id) AS roles
             FROM consults c
             JOIN bookings b ON b.id = c.booking_id
             JOIN consult_participants p ON p.consult_id = c.id
            WHERE c.id = $1
            GROUP BY c.id, b.id""",
        consult_id,
    )
    if row is None:
        return None
    fields = dict(row)
    participants = [
        Participant(user_id=user_id, role=role)
        for user_id, role in zip(fields.pop("user_ids"), fields.pop("roles"), strict=True)
    ]
    return Consult(**fields, participants=participants)


async def consult_participant(
    conn: asyncpg.Connection | asyncpg.Pool, consult_id: UUID, user_id: UUID
) -> ParticipantRole | None:
    """The role in which `user_id` may join the consult's call; None when they are not a
    participant or the booking was cancelled."""
    role = await conn.fetchval(
        """SELECT p.role FROM consult_participants p
             JOIN consults c ON c.id = p.consult_id
             JOIN bookings b ON b.id = c.booking_id
            WHERE p.consult_id = $1 AND p.user_id = $2 AND b.status <> 'cancelled'""",
        consult_id,
        user_id,
    )
    return ParticipantRole(role) if role is not None else None


def role_in(consult: Consult, user_id: UUID) -> ParticipantRole:
    """The user's role in the consult's call; Forbidden when the booking was cancelled or they
    are not one of its participants."""
    if consult.booking_status == "cancelled":
        raise Forbidden("this consult's booking was cancelled")
    for participant in consult.participants:
        if participant.user_id == user_id:
            return participant.role
    raise Forbidden("you are not a participant of this consult")


async def consult_for(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: UUID, consult_id: UUID
) -> Consult:
    """The consult as a participant sees it; NotFound for anyone else."""
    consult = await get_consult(conn, consult_id)
    if consult is None or all(p.user_id != user_id for p in consult.participants):
        raise NotFound("no such consult")
    return consult


async def invite(
    conn: asyncpg.Connection, inviter_id: UUID, consult_id: UUID, user_id: UUID
) -> Consult:
    """The consult's vet or owner invites someone (a colleague, a family member) to the call."""
    consult = await consult_for(conn, inviter_id, consult_id)
    if inviter_id not in (consult.vet_id, consult.owner_id):
        raise Forbidden("only the consult's vet or owner may invite")
    added = await conn.fetchval(
        """INSERT INTO consult_participants (consult_id, user_id, role, added_by)
           SELECT $1, id, 'invited', $3 FROM users WHERE id = $2
           ON CONFLICT (consult_id, user_id) DO NOTHING
           RETURNING user_id""",
        consult_id,
        user_id,
        inviter_id,
    )
    if added is None and all(p.user_id != user_id for p in consult.participants):
        raise NotFound("no such user")
    found = await get_consult(conn, consult_id)
    assert found is not None
    return found
