"""The consults a person takes part in that have not ended yet, with the names a page shows."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from domain.fields import Named

UPCOMING_LIMIT = 50


class UpcomingConsult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    room: UUID
    starts_at: datetime
    ends_at: datetime
    pet: Named
    vet: Named
    owner: Named


async def upcoming_for(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: UUID
) -> list[UpcomingConsult]:
    """The user's consults not yet ended and not cancelled, soonest first (at most 50)."""
    rows = await conn.fetch(
        """SELECT c.id, c.room, b.starts_at, b.ends_at,
                  pet.id AS pet_id, pet.name AS pet_name, vet.id AS vet_id, vet.name AS vet_name,
                  owner.id AS owner_id, owner.name AS owner_name
             FROM consult_participants p
             JOIN consults c ON c.id = p.consult_id
             JOIN bookings b ON b.id = c.booking_id
             JOIN pets pet ON pet.id = c.pet_id
             JOIN users vet ON vet.id = c.vet_id
             JOIN users owner ON owner.id = c.owner_id
            WHERE p.user_id = $1 AND b.status <> 'cancelled' AND b.ends_at > now()
            ORDER BY b.starts_at, c.id
            LIMIT $2""",
        user_id,
        UPCOMING_LIMIT,
    )
    return [
        UpcomingConsult(
            id=row["id"],
            room=row["room"],
            starts_at=row["starts_at"],
            ends_at=row["ends_at"],
            pet=Named(id=row["pet_id"], name=row["pet_name"]),
            vet=Named(id=row["vet_id"], name=row["vet_name"]),
            owner=Named(id=row["owner_id"], name=row["owner_name"]),
        )
        for row in rows
    ]
