"""Video consults made through the domain functions, with a token for each participant: what
the `/rtc` tests and benchmarks join."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast
from uuid import UUID, uuid4

import asyncpg

from domain.clinical.pets import NewPet, create_pet
from domain.identity import NewUser, Role, User
from domain.identity.tokens import issue_access_token
from domain.identity.users import create_user
from domain.scheduling.availability import Availability, WeeklyWindow, set_availability
from domain.scheduling.booking_rules import BookingKind, NewBooking
from domain.scheduling.bookings import create_booking
from domain.scheduling.consults import invite

ALWAYS_OPEN = Availability(
    time_zone="UTC",
    weekly=[WeeklyWindow(weekday=day, start="00:00", end="24:00") for day in range(7)],
)


@dataclass(frozen=True)
class Person:
    user: User
    token: str

    @property
    def id(self) -> str:
        return str(self.user.id)


@dataclass(frozen=True)
class VideoConsult:
    id: str
    vet: Person
    owner: Person
    invited: list[Person]

    @property
    def everyone(self) -> list[Person]:
        return [self.vet, self.owner, *self.invited]


async def make_person(pool: asyncpg.Pool, jwt_secret: str, role: Role, name: str) -> Person:
    user = await create_user(
        pool,
        NewUser(
            email=f"{uuid4().hex[:12]}@example.com", password="correct horse", name=name, role=role
        ),
    )
    return Person(user, issue_access_token(user, jwt_secret))


async def make_video_consult(
    pool: asyncpg.Pool, jwt_secret: str, *, invited: int = 0
) -> VideoConsult:
    """A fresh vet books a fresh owner's pet for a video consult; the owner invites `invited`
    more people (specialists, family)."""
    vet = await make_person(pool, jwt_secret, Role.vet, "Dr. Vera Vet")
    owner = await make_person(pool, jwt_secret, Role.owner, "Olive Owner")
    guests = [
        await make_person(pool, jwt_secret, Role.owner, f"Guest {number}")
        for number in range(invited)
    ]
    async with pool.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)  # a pooled connection proxies a Connection
        await set_availability(conn, vet.user.id, ALWAYS_OPEN)
        pet = await create_pet(conn, owner.user.id, NewPet(name="Rex", species="dog"))
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        booking = await create_booking(
            conn,
            owner.user.id,
            NewBooking(
                vet_id=vet.user.id,
                pet_id=pet.id,
                start=start,
                duration_min=30,
                kind=BookingKind.video,
            ),
        )
        consult_id: UUID | None = booking.consult_id
        assert consult_id is not None
        for guest in guests:
            await invite(conn, owner.user.id, consult_id, guest.user.id)
    return VideoConsult(str(consult_id), vet, owner, guests)
