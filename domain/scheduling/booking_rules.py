"""What a booking is and the rules it follows: its kinds, the statuses it moves through and which
moves are allowed, who may record how it ended, and how far ahead it may be booked."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.identity import Role
from domain.identity.tokens import Principal

MAX_LEAD = timedelta(days=366)
MAX_SLOT_RANGE = timedelta(days=31)


class BookingKind(StrEnum):
    video = "video"
    in_person = "in_person"


class BookingStatus(StrEnum):
    requested = "requested"
    confirmed = "confirmed"
    cancelled = "cancelled"
    completed = "completed"
    no_show = "no_show"


# Where each status may go next; cancelled, completed and no_show are final.
TRANSITIONS: dict[BookingStatus, frozenset[BookingStatus]] = {
    BookingStatus.requested: frozenset({BookingStatus.confirmed, BookingStatus.cancelled}),
    BookingStatus.confirmed: frozenset(
        {BookingStatus.cancelled, BookingStatus.completed, BookingStatus.no_show}
    ),
}


Outcome = Literal[BookingStatus.completed, BookingStatus.no_show]


def may_transition(current: BookingStatus, new: BookingStatus) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def may_record_outcome(principal: Principal, vet_id: UUID) -> bool:
    """How a booking ended is said by its vet or an admin, never by its owner."""
    return principal.role is Role.admin or principal.user_id == vet_id


def outcome_refusal(
    current: BookingStatus, outcome: Outcome, starts_at: datetime, now: datetime
) -> str | None:
    """Why `outcome` cannot be recorded now, or None when it can."""
    if not may_transition(current, outcome):
        return f"a {current} booking cannot become {outcome}"
    if outcome is BookingStatus.no_show and now < starts_at:
        return "a booking can be marked no_show only once it has started"
    return None


class NewBooking(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vet_id: UUID
    pet_id: UUID
    start: AwareDatetime
    duration_min: int = Field(ge=5, le=480)
    kind: BookingKind

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration_min)


class StatusChange(BaseModel):
    status: BookingStatus
    changed_by: UUID
    changed_at: datetime


class Booking(BaseModel):
    id: UUID
    vet_id: UUID
    owner_id: UUID
    pet_id: UUID
    kind: BookingKind
    start: datetime
    end: datetime
    status: BookingStatus
    consult_id: UUID | None
    history: list[StatusChange]


class Slot(BaseModel):
    start: datetime
    end: datetime
