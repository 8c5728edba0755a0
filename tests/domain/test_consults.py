"""Who may join a consult, as what: the question the /rtc namespace asks."""

from uuid import uuid4

import asyncpg
import pytest

from domain.chat.conversations import is_member
from domain.errors import Forbidden, NotFound
from domain.identity import Role
from domain.scheduling.bookings import cancel_booking
from domain.scheduling.consults import ParticipantRole, consult_participant, get_consult, invite
from tests.conftest import BookedPet


async def test_participants_roles_invitations_and_cancellation(
    pool: asyncpg.Pool, make_user, booked_pet: BookedPet
) -> None:  # type: ignore[no-untyped-def]
    owner, vet, booking = booked_pet.owner, booked_pet.vet, booked_pet.booking
    friend, _ = await make_user(Role.owner)
    stranger, _ = await make_user(Role.owner)
    async with pool.acquire() as conn:
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
