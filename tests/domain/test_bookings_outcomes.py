"""The rules for recording how a booking ended, as plain functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from domain.identity import Role
from domain.identity.tokens import Principal
from domain.scheduling.booking_rules import BookingStatus, may_record_outcome, outcome_refusal

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_only_the_bookings_vet_or_an_admin_records_its_outcome() -> None:
    vet_id = uuid4()
    assert may_record_outcome(Principal(user_id=vet_id, name="v", role=Role.vet), vet_id)
    assert may_record_outcome(Principal(user_id=uuid4(), name="a", role=Role.admin), vet_id)
    assert not may_record_outcome(Principal(user_id=uuid4(), name="v", role=Role.vet), vet_id)
    assert not may_record_outcome(Principal(user_id=uuid4(), name="o", role=Role.owner), vet_id)


def test_outcomes_follow_from_confirmed_and_no_show_waits_for_the_start() -> None:
    before, after = START - timedelta(minutes=1), START + timedelta(minutes=1)
    confirmed = BookingStatus.confirmed
    assert outcome_refusal(confirmed, BookingStatus.completed, START, before) is None
    assert outcome_refusal(confirmed, BookingStatus.no_show, START, after) is None
    assert outcome_refusal(confirmed, BookingStatus.no_show, START, START) is None
    assert "started" in str(outcome_refusal(confirmed, BookingStatus.no_show, START, before))
    for current in (
        BookingStatus.requested,
        BookingStatus.cancelled,
        BookingStatus.completed,
        BookingStatus.no_show,
    ):
        for outcome in (BookingStatus.completed, BookingStatus.no_show):
            assert outcome_refusal(current, outcome, START, after) == (
                f"a {current} booking cannot become {outcome}"
            )
