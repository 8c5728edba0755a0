"""`role_in`: who a user is in a consult's call, decided from the consult alone."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain.errors import Forbidden
from domain.scheduling.consults import Consult, Participant, ParticipantRole, role_in


def consult_with(*participants: Participant, booking_status: str = "confirmed") -> Consult:
    starts_at = datetime.now(UTC)
    return Consult(
        id=uuid4(),
        booking_id=uuid4(),
        room=uuid4(),
        vet_id=uuid4(),
        owner_id=uuid4(),
        pet_id=uuid4(),
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=30),
        booking_status=booking_status,
        participants=list(participants),
    )


def test_each_participant_has_their_role_and_nobody_else_one() -> None:
    people = {role: Participant(user_id=uuid4(), role=role) for role in ParticipantRole}
    consult = consult_with(*people.values())
    for role, participant in people.items():
        assert role_in(consult, participant.user_id) is role
    with pytest.raises(Forbidden, match="not a participant"):
        role_in(consult, uuid4())


def test_a_cancelled_booking_has_no_call_even_for_its_vet() -> None:
    vet = Participant(user_id=uuid4(), role=ParticipantRole.vet)
    with pytest.raises(Forbidden, match="cancelled"):
        role_in(consult_with(vet, booking_status="cancelled"), vet.user_id)
