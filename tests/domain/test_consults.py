"""Who may join a consult, as what: the question the /rtc namespace asks."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from domain.availability import Availability, set_availability
from domain.bookings import BookingKind, NewBooking, cancel_booking, create_booking
from domain.consults import ParticipantRole, consult_participant, get_consult, invite
from domain.conversations import is_member
from domain.errors import Forbidden, NotFound
from domain.identity import Role
from domain.pets import NewPet, create_pet


async def test_participants_roles_invitations_and_cancellation(
    pool: asyncpg.Pool, make_user
) -> None:  # type: ignore[no-untyped-def]
    owner, _ = await make_user(Role.owner)
    vet, _ = await make_user(Role.vet)
    friend, _ = await make_user(Role.owner)
    stranger, _ = await make_user(Role.owner)
    async with pool.acquire() as conn:
        await set_availability(
            conn,
            vet.id,
            Availability(
                time_zone="UTC",
                weekly=[{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)],  # type: ignore[misc]
            ),
        )
        pet = await create_pet(conn, owner.id, NewPet(name="Rex", species="dog"))
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        booking = await create_booking(
            conn,
            owner.id,
            NewBooking(
                vet_id=vet.id, pet_id=pet.id, start=start, duration_min=30, kind=BookingKind.video
            ),
        )
        assert booking.consult_id is not None
        consult = await get_consult(conn, booking.consult_id)
        assert consult is not None and consult.booking_id == booking.id
        assert await is_member(conn, consult.room, owner.id) and await is_member(
            conn, consult.room, vet.id
        )

        assert await consult_participant(conn, consult.id, owner.id) is ParticipantRole.owner
        assert await consult_participant(conn, consult.id, vet.id) is ParticipantRole.vet
        assert await consult_participant(conn, consult.id, stranger.id) is None
        assert await consult_participant(conn, uuid4(), owner.id) is None

        await invite(conn, owner.id, consult.id, friend.id)
        assert await consult_participant(conn, consult.id, friend.id) is ParticipantRole.invited
        with pytest.raises(Forbidden):  # the invited may not invite others
            await invite(conn, friend.id, consult.id, stranger.id)
        with pytest.raises(NotFound):  # nor may outsiders see the consult at all
            await invite(conn, stranger.id, consult.id, stranger.id)

        await cancel_booking(conn, owner.id, booking.id)
        assert await consult_participant(conn, consult.id, vet.id) is None
        assert await get_consult(conn, consult.id) is not None
