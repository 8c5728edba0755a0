"""Bookings: an owner books a vet's time for a pet. Overlaps of a vet's live bookings (buffers
included) are impossible in the database itself (an exclusion constraint over `blocked`); a
cancelled booking keeps its row and its status history. The rules each change follows:
`domain.scheduling.booking_rules`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

import asyncpg
from pydantic import TypeAdapter

from domain.db import Conn
from domain.errors import Conflict, Forbidden, Invalid, NotFound
from domain.identity import Role
from domain.identity.tokens import Principal
from domain.scheduling.availability import fits, free_slots, get_availability, utc_windows
from domain.scheduling.booking_rules import (
    MAX_LEAD,
    MAX_SLOT_RANGE,
    Booking,
    BookingKind,
    BookingStatus,
    NewBooking,
    Outcome,
    Slot,
    StatusChange,
    may_record_outcome,
    may_transition,
    outcome_refusal,
)
from domain.scheduling.consults import open_consult

_history = TypeAdapter(list[StatusChange])

_SELECT_BOOKING = """
SELECT b.id, b.vet_id, b.owner_id, b.pet_id, b.kind, b.starts_at AS start, b.ends_at AS end,
       b.status, (SELECT c.id FROM consults c WHERE c.booking_id = b.id) AS consult_id,
       (SELECT json_agg(json_build_object('status', h.status, 'changed_by', h.changed_by,
                                          'changed_at', h.changed_at) ORDER BY h.id)
          FROM booking_status_history h WHERE h.booking_id = b.id)::text AS history
  FROM bookings b
 WHERE b.id = $1 AND ($2 IN (b.owner_id, b.vet_id) OR $3)"""


async def get_booking(
    conn: asyncpg.Connection | asyncpg.Pool,
    user_id: UUID,
    booking_id: UUID,
    *,
    any_booking: bool = False,
) -> Booking:
    """The booking as its owner or vet sees it (or anyone, with `any_booking`); NotFound for
    anyone else."""
    row = await conn.fetchrow(_SELECT_BOOKING, booking_id, user_id, any_booking)
    if row is None:
        raise NotFound("no such booking")
    return Booking(**{**dict(row), "history": _history.validate_json(row["history"])})


async def create_booking(
    conn: asyncpg.Connection,
    owner_id: UUID,
    new: NewBooking,
    *,
    now: datetime | None = None,
    status: Literal[BookingStatus.requested, BookingStatus.confirmed] = BookingStatus.confirmed,
) -> Booking:
    """Book a vet for the owner's pet inside the vet's availability. A video booking opens its
    consult and chat room in the same transaction. Conflict when the time is taken. A booking
    created `requested` holds its time until it is confirmed (once its fee is held) or swept."""
    now = now or datetime.now(UTC)
    if not now <= new.start <= now + MAX_LEAD:
        raise Invalid("start must be in the future and within a year")
    async with conn.transaction():
        pet_name = await conn.fetchval(
            "SELECT name FROM pets WHERE id = $1 AND owner_id = $2", new.pet_id, owner_id
        )
        if pet_name is None:
            raise NotFound("no such pet")
        availability = await get_availability(conn, new.vet_id)
        if availability is None or not fits(availability, new.start, new.end):
            raise Invalid("the vet is not available at that time")
        try:
            booking_id: UUID = await conn.fetchval(
                """INSERT INTO bookings
                       (vet_id, owner_id, pet_id, kind, starts_at, ends_at, blocked, status)
                   VALUES ($1, $2, $3, $4, $5, $6, tstzrange($5, $7, '[)'), $8)
                   RETURNING id""",
                new.vet_id,
                owner_id,
                new.pet_id,
                new.kind.value,
                new.start,
                new.end,
                new.end + availability.buffer,
                status.value,
            )
        except asyncpg.ExclusionViolationError as exc:
            raise Conflict("that time is already booked") from exc
        await _record_status(conn, booking_id, status, owner_id)
        if new.kind is BookingKind.video:
            await open_consult(
                conn, booking_id, owner_id, new.vet_id, new.pet_id, f"Consult: {pet_name}"
            )
        return await get_booking(conn, owner_id, booking_id)


async def cancel_booking(conn: asyncpg.Connection, user_id: UUID, booking_id: UUID) -> Booking:
    """The owner or the vet cancels; the row stays, with its history, and frees the time."""
    return await change_status(conn, user_id, booking_id, BookingStatus.cancelled)


async def check_change(
    conn: asyncpg.Connection,
    user_id: UUID,
    booking_id: UUID,
    status: BookingStatus,
    *,
    lock: bool = False,
) -> None:
    """Refuse (NotFound, Conflict) a status change the booking's owner or vet may not make now;
    unlocked, it is a pre-check before calls to Stripe, repeated under the lock after them."""
    current = await conn.fetchval(
        "SELECT status FROM bookings WHERE id = $1 AND $2 IN (owner_id, vet_id)"
        + (" FOR UPDATE" if lock else ""),
        booking_id,
        user_id,
    )
    if current is None:
        raise NotFound("no such booking")
    if not may_transition(BookingStatus(current), status):
        raise Conflict(f"a {current} booking cannot become {status}")


async def change_status(
    conn: asyncpg.Connection, user_id: UUID, booking_id: UUID, status: BookingStatus
) -> Booking:
    async with conn.transaction():
        await check_change(conn, user_id, booking_id, status, lock=True)
        return await _apply_status(conn, booking_id, status, user_id)


async def confirm_requested(conn: Conn, booking_id: UUID, user_id: UUID) -> bool:
    """Confirm a `requested` booking (its fee is now held); False when it is no longer one."""
    confirmed = await conn.fetchval(
        "UPDATE bookings SET status = 'confirmed' WHERE id = $1 AND status = 'requested' "
        "RETURNING true",
        booking_id,
    )
    if confirmed:
        await _record_status(conn, booking_id, BookingStatus.confirmed, user_id)
    return bool(confirmed)


async def cancel_stale_requests(conn: asyncpg.Connection, older_than: timedelta) -> int:
    """Cancel `requested` bookings older than `older_than` whose fee was never held (the API
    died between booking and Stripe's answer), so no slot stays taken without a payment."""
    async with conn.transaction():
        rows = await conn.fetch(
            """UPDATE bookings SET status = 'cancelled'
                WHERE id IN (SELECT b.id FROM bookings b
                              WHERE b.status = 'requested' AND b.created_at < now() - $1::interval
                                AND NOT EXISTS (SELECT 1 FROM consult_fees f
                                                 WHERE f.booking_id = b.id)
                              FOR UPDATE SKIP LOCKED)
            RETURNING id, owner_id""",
            older_than,
        )
        for row in rows:
            await _record_status(conn, row["id"], BookingStatus.cancelled, row["owner_id"])
    return len(rows)


async def record_outcome(
    conn: asyncpg.Connection,
    principal: Principal,
    booking_id: UUID,
    outcome: Outcome,
    *,
    now: datetime | None = None,
) -> Booking:
    """The booking's vet or an admin records how a confirmed booking ended: completed, or (once
    it has started) no_show. Its owner is refused; anyone else does not see it."""
    async with conn.transaction():
        await check_outcome(conn, principal, booking_id, outcome, now=now, lock=True)
        return await _apply_status(conn, booking_id, outcome, principal.user_id, any_booking=True)


async def check_outcome(
    conn: asyncpg.Connection,
    principal: Principal,
    booking_id: UUID,
    outcome: Outcome,
    *,
    now: datetime | None = None,
    lock: bool = False,
) -> None:
    """Refuse (NotFound, Forbidden, Conflict) an outcome the principal may not record now."""
    now = now or datetime.now(UTC)
    row = await conn.fetchrow(
        "SELECT status, vet_id, starts_at FROM bookings "
        "WHERE id = $1 AND ($2 IN (owner_id, vet_id) OR $3)" + (" FOR UPDATE" if lock else ""),
        booking_id,
        principal.user_id,
        principal.role is Role.admin,
    )
    if row is None:
        raise NotFound("no such booking")
    if not may_record_outcome(principal, row["vet_id"]):
        raise Forbidden("only the booking's vet or an admin may record how it ended")
    refusal = outcome_refusal(BookingStatus(row["status"]), outcome, row["starts_at"], now)
    if refusal is not None:
        raise Conflict(refusal)


async def _apply_status(
    conn: asyncpg.Connection,
    booking_id: UUID,
    status: BookingStatus,
    user_id: UUID,
    *,
    any_booking: bool = False,
) -> Booking:
    await conn.execute("UPDATE bookings SET status = $2 WHERE id = $1", booking_id, status)
    await _record_status(conn, booking_id, status, user_id)
    return await get_booking(conn, user_id, booking_id, any_booking=any_booking)


async def _record_status(
    conn: Conn, booking_id: UUID, status: BookingStatus, user_id: UUID
) -> None:
    await conn.execute(
        "INSERT INTO booking_status_history (booking_id, status, changed_by) VALUES ($1, $2, $3)",
        booking_id,
        status.value,
        user_id,
    )


async def list_slots(
    conn: asyncpg.Connection | asyncpg.Pool,
    vet_id: UUID,
    start: datetime,
    end: datetime,
    duration_min: int,
    *,
    now: datetime | None = None,
) -> list[Slot]:
    """The vet's free slots of `duration_min` between two instants, in UTC, none in the past."""
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("from and to need a UTC offset")
    now = now or datetime.now(UTC)
    if not (start < end and end - start <= MAX_SLOT_RANGE and end <= now + MAX_LEAD):
        raise Invalid("to must be after from, at most 31 days later and within a year")
    availability = await get_availability(conn, vet_id)
    if availability is None:
        return []
    start = max(start, now)
    busy = await conn.fetch(
        "SELECT lower(blocked) AS busy_start, upper(blocked) AS busy_end FROM bookings "
        "WHERE vet_id = $1 AND status IN ('requested', 'confirmed') "
        "AND blocked && tstzrange($2, $3)",
        vet_id,
        start - availability.buffer,
        end + availability.buffer,
    )
    slots = free_slots(
        utc_windows(availability, start, end),
        [(row["busy_start"], row["busy_end"]) for row in busy],
        timedelta(minutes=duration_min),
        availability.buffer,
        start,
        end,
    )
    return [Slot(start=a.astimezone(UTC), end=b.astimezone(UTC)) for a, b in slots]
