"""The demo clinic `pawhub up` seeds in development: an owner, a vet and a moderator with known
passwords, the owner's pet, and a video consult starting now, so that a newcomer signs in and
is in a consult within a minute. People and pet are created once; a new consult is booked only
when the demo owner has none that has not ended. Production never seeds (see `pawhub up`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from domain.clinical.pets import NewPet, create_pet, list_pets
from domain.identity import NewUser, Role, User
from domain.identity.users import EmailTaken, authenticate, create_user
from domain.scheduling.availability import Availability, WeeklyWindow, set_availability
from domain.scheduling.booking_rules import BookingKind, NewBooking
from domain.scheduling.bookings import create_booking
from domain.scheduling.upcoming import upcoming_for

DEMO_PASSWORD = "pawhub-demo"
DEMO_PEOPLE = (
    (Role.owner, "owner@demo.example.com", "Olive Owner"),
    (Role.vet, "vet@demo.example.com", "Vera Vet"),
    (Role.moderator, "moderator@demo.example.com", "Mona Moderator"),
)
CONSULT_LENGTH = timedelta(hours=1)


class DemoUnavailable(Exception):
    """A demo account exists with another password: its sign-in would not work."""


@dataclass(frozen=True)
class DemoClinic:
    people: list[User]
    consult_id: UUID


async def _person(conn: asyncpg.Connection, role: Role, email: str, name: str) -> User:
    known = await authenticate(conn, email, DEMO_PASSWORD)
    if known is not None:
        return known
    try:
        return await create_user(
            conn, NewUser(email=email, password=DEMO_PASSWORD, name=name, role=role)
        )
    except EmailTaken:
        raise DemoUnavailable(f"{email} exists with another password; no demo this time") from None


async def seed_demo(database_url: str, now: datetime | None = None) -> DemoClinic:
    """Seed (or find) the demo clinic; returns its people and the consult to open."""
    start = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    conn = await asyncpg.connect(database_url)
    try:
        owner, vet, moderator = [await _person(conn, *person) for person in DEMO_PEOPLE]
        upcoming = await upcoming_for(conn, owner.id)
        if upcoming:
            return DemoClinic([owner, vet, moderator], upcoming[0].id)
        pets = await list_pets(conn, owner.id)
        pet = (
            pets[0]
            if pets
            else await create_pet(conn, owner.id, NewPet(name="Biscuit", species="dog"))
        )
        always = [WeeklyWindow(weekday=day, start="00:00", end="24:00") for day in range(7)]
        await set_availability(conn, vet.id, Availability(time_zone="UTC", weekly=always))
        new = NewBooking(
            vet_id=vet.id,
            pet_id=pet.id,
            start=start,
            duration_min=int(CONSULT_LENGTH.total_seconds() // 60),
            kind=BookingKind.video,
        )
        booking = await create_booking(conn, owner.id, new, now=start)
        consult_id = await conn.fetchval(
            "SELECT id FROM consults WHERE booking_id = $1", booking.id
        )
        return DemoClinic([owner, vet, moderator], consult_id)
    finally:
        await conn.close()


def welcome(clinic: DemoClinic, hub_url: str) -> str:
    """What `pawhub up` prints: where to go and how to sign in."""
    lines = [
        "",
        f"  pawhub is ready: open {hub_url}/app/",
        f"  demo consult:    {hub_url}/app/consults/{clinic.consult_id}",
        f"  demo sign-ins (password {DEMO_PASSWORD}):",
        *(f"    {person.role.value:<10} {person.email}" for person in clinic.people),
        f"  moderators:      {hub_url}/app/moderation",
        "",
    ]
    return "\n".join(lines)
