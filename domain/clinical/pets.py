"""Pets: they belong to owners; a vet sees a pet while they have a booking with it that was
not cancelled."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Self
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator, model_validator

from domain.errors import Forbidden, NotFound
from domain.fields import NO_NUL, Name, ShortText

Species = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=NO_NUL)]


class Sex(StrEnum):
    male = "male"
    female = "female"
    unknown = "unknown"


def _not_in_future(value: date | None) -> date | None:
    if value is not None and value > datetime.now(UTC).date():
        raise ValueError("birth_date is in the future")
    return value


class NewPet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    species: Species
    breed: ShortText | None = None
    sex: Sex | None = None
    birth_date: date | None = None

    _birth_date = field_validator("birth_date")(_not_in_future)


class PetChanges(BaseModel):
    """A partial update: only the fields sent change; breed, sex and birth_date may be cleared."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    species: Species | None = None
    breed: ShortText | None = None
    sex: Sex | None = None
    birth_date: date | None = None

    _birth_date = field_validator("birth_date")(_not_in_future)

    @model_validator(mode="after")
    def _required_stay_set(self) -> Self:
        for field in ("name", "species"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be cleared")
        return self


class Pet(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    owner_id: UUID
    name: str
    species: str
    breed: str | None
    sex: Sex | None
    birth_date: date | None
    created_at: datetime


_COLUMNS = "p.id, p.owner_id, p.name, p.species, p.breed, p.sex, p.birth_date, p.created_at"


def visible_to(user_param: str) -> str:
    """SQL condition: pet `p` is visible to the user bound at `user_param` (e.g. "$2")."""
    return (
        f"(p.owner_id = {user_param} OR EXISTS (SELECT 1 FROM bookings b WHERE b.pet_id = p.id"
        f" AND b.vet_id = {user_param} AND b.status <> 'cancelled'))"
    )


async def create_pet(conn: asyncpg.Connection | asyncpg.Pool, owner_id: UUID, new: NewPet) -> Pet:
    row = await conn.fetchrow(
        "INSERT INTO pets AS p (owner_id, name, species, breed, sex, birth_date) "
        f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_COLUMNS}",
        owner_id,
        new.name,
        new.species,
        new.breed,
        new.sex,
        new.birth_date,
    )
    assert row is not None
    return Pet(**dict(row))


async def list_pets(conn: asyncpg.Connection | asyncpg.Pool, user_id: UUID) -> list[Pet]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM pets p WHERE {visible_to('$1')} ORDER BY p.created_at, p.id",
        user_id,
    )
    return [Pet(**dict(row)) for row in rows]


async def get_pet(conn: asyncpg.Connection | asyncpg.Pool, user_id: UUID, pet_id: UUID) -> Pet:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM pets p WHERE p.id = $1 AND {visible_to('$2')}", pet_id, user_id
    )
    if row is None:
        raise NotFound("no such pet")
    return Pet(**dict(row))


async def update_pet(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: UUID, pet_id: UUID, changes: PetChanges
) -> Pet:
    """Only the owner changes a pet; a vet who sees it is refused."""
    pet = await get_pet(conn, user_id, pet_id)
    if pet.owner_id != user_id:
        raise Forbidden("only the pet's owner may change it")
    values = changes.model_dump(exclude_unset=True)
    if not values:
        return pet
    # Column names come from the model's own fields, never from the request.
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(values, start=2))
    row = await conn.fetchrow(
        f"UPDATE pets AS p SET {assignments} WHERE p.id = $1 RETURNING {_COLUMNS}",
        pet_id,
        *values.values(),
    )
    assert row is not None
    return Pet(**dict(row))
