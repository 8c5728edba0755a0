"""Role rules, booking transitions and EHR record rules: plain functions."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from domain.clinical.records import NewRecord, RecordKind, content_digest, is_locked, validate_data
from domain.identity import Role
from domain.identity.permissions import (
    may_book,
    may_create_users,
    may_set_availability,
    may_write_records,
)
from domain.identity.tokens import Principal
from domain.scheduling.booking_rules import BookingStatus, may_transition


def principal(role: Role) -> Principal:
    return Principal(user_id=uuid4(), name="x", role=role)


def test_role_rules() -> None:
    assert [r for r in Role if may_create_users(r)] == [Role.admin]
    assert [r for r in Role if may_write_records(r)] == [Role.vet]
    assert [r for r in Role if may_book(r)] == [Role.owner]
    vet = principal(Role.vet)
    assert may_set_availability(vet, vet.user_id)
    assert not may_set_availability(vet, uuid4())
    assert may_set_availability(principal(Role.admin), vet.user_id)
    assert not may_set_availability(principal(Role.owner), vet.user_id)


def test_booking_transitions() -> None:
    assert may_transition(BookingStatus.confirmed, BookingStatus.cancelled)
    assert may_transition(BookingStatus.confirmed, BookingStatus.completed)
    assert may_transition(BookingStatus.requested, BookingStatus.confirmed)
    for final in (BookingStatus.cancelled, BookingStatus.completed, BookingStatus.no_show):
        assert not any(may_transition(final, status) for status in BookingStatus)


def test_records_lock_after_24_hours() -> None:
    signed = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert not is_locked(signed, signed + timedelta(hours=23, minutes=59))
    assert is_locked(signed, signed + timedelta(hours=24))


def test_each_kind_has_its_own_model_and_unknown_fields_are_refused() -> None:
    record = NewRecord.model_validate({"kind": "weight", "data": {"kg": 4.2}})
    assert record.root.kind is RecordKind.weight
    with pytest.raises(ValidationError):
        NewRecord.model_validate({"kind": "weight", "data": {"kg": 4.2, "extra": 1}})
    with pytest.raises(ValidationError):
        NewRecord.model_validate({"kind": "note", "data": {"kg": 4.2}})
    with pytest.raises(ValidationError):
        validate_data(RecordKind.lab, {"test": "ALT", "value": float("nan")})
    with pytest.raises(ValidationError):
        validate_data(RecordKind.allergy, {"allergen": "nuts\x00"})


def test_the_digest_covers_content_and_author() -> None:
    pet, author = uuid4(), uuid4()
    data = validate_data(RecordKind.weight, {"kg": 4.2})
    digest = content_digest(pet, RecordKind.weight, data, author)
    assert digest == content_digest(
        pet, RecordKind.weight, validate_data(RecordKind.weight, {"kg": 4.2}), author
    )
    assert digest != content_digest(
        pet, RecordKind.weight, validate_data(RecordKind.weight, {"kg": 4.3}), author
    )
    assert digest != content_digest(pet, RecordKind.weight, data, uuid4())
