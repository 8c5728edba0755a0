"""Bookings with their consult fee: a paid video booking holds the fee at Stripe before it is
confirmed, captures it when the vet completes the consult and releases it when the booking is
cancelled or the owner did not show up.

No database lock is held while Stripe answers: the booking's row is written (and its slot taken,
as `requested`) in one short transaction, Stripe is called, and the outcome is written in
another. When Stripe refuses the hold, the booking is cancelled at once, freeing the slot, and
the refusal propagates (REST answers 502). A status change is checked before the Stripe call
and again, under the row lock, after it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg
import stripe
from pydantic import BaseModel

from domain.commerce import consult_fees
from domain.commerce.consult_fees import ConsultFee, FeeStatus
from domain.commerce.customers import ensure_customer
from domain.commerce.payouts import destination_for
from domain.identity.tokens import Principal
from domain.scheduling import bookings
from domain.scheduling.booking_rules import Booking, BookingKind, BookingStatus, NewBooking, Outcome


@dataclass(frozen=True)
class FeeTerms:
    """What a video consult costs and the platform's share of a vet's destination charge."""

    amount_minor: int
    currency: str
    platform_fee_percent: float


class Fee(BaseModel):
    """A booking's consult fee; `client_secret` (for Stripe.js) is shown to its owner only."""

    payment_intent_id: str
    amount_minor: int
    currency: str
    status: FeeStatus
    client_secret: str | None = None


class PaidBooking(Booking):
    fee: Fee | None = None


def _with_fee(booking: Booking, fee: ConsultFee | None, viewer_id: UUID) -> PaidBooking:
    shown = None
    if fee is not None:
        shown = Fee(
            payment_intent_id=fee.payment_intent_id,
            amount_minor=fee.amount_minor,
            currency=fee.currency,
            status=fee.status,
            client_secret=fee.client_secret if viewer_id == booking.owner_id else None,
        )
    return PaidBooking(**booking.model_dump(), fee=shown)


async def read(
    conn: asyncpg.Connection, user_id: UUID, booking_id: UUID, *, any_booking: bool = False
) -> PaidBooking:
    booking = await bookings.get_booking(conn, user_id, booking_id, any_booking=any_booking)
    return _with_fee(booking, await consult_fees.get_fee(conn, booking_id), user_id)


async def book(
    conn: asyncpg.Connection,
    client: stripe.StripeClient,
    owner_id: UUID,
    new: NewBooking,
    terms: FeeTerms,
) -> PaidBooking:
    """Book, holding the consult fee of a video booking (none when the fee is 0)."""
    if new.kind is not BookingKind.video or terms.amount_minor == 0:
        return await read(conn, owner_id, (await bookings.create_booking(conn, owner_id, new)).id)
    booking = await bookings.create_booking(conn, owner_id, new, status=BookingStatus.requested)
    try:
        customer = await ensure_customer(conn, client, owner_id)
        destination = await destination_for(
            conn, new.vet_id, terms.amount_minor, terms.platform_fee_percent
        )
        await consult_fees.hold_consult_fee(
            conn,
            client,
            booking,
            terms.amount_minor,
            terms.currency,
            customer=customer,
            destination=destination,
        )
    except Exception:
        # Never leave the slot taken without a fee: give it back, then report the refusal.
        await bookings.cancel_booking(conn, owner_id, booking.id)
        raise
    return await read(conn, owner_id, booking.id)


async def _settle(
    conn: asyncpg.Connection, client: stripe.StripeClient, booking_id: UUID, capture: bool
) -> None:
    fee = await consult_fees.get_fee(conn, booking_id)
    if fee is None:
        return
    if capture:
        await consult_fees.capture_consult_fee(conn, client, booking_id)
    else:
        await consult_fees.release_consult_fee(conn, client, booking_id)


async def cancel(
    conn: asyncpg.Connection, client: stripe.StripeClient, user_id: UUID, booking_id: UUID
) -> PaidBooking:
    """The owner or the vet cancels; the held fee is released first (a refusal keeps the
    booking as it was)."""
    await bookings.check_change(conn, user_id, booking_id, BookingStatus.cancelled)
    await _settle(conn, client, booking_id, capture=False)
    await bookings.cancel_booking(conn, user_id, booking_id)
    return await read(conn, user_id, booking_id)


async def record_outcome(
    conn: asyncpg.Connection,
    client: stripe.StripeClient,
    principal: Principal,
    booking_id: UUID,
    outcome: Outcome,
) -> PaidBooking:
    """Completed captures the held fee (Conflict, and the booking unchanged, while the owner
    has not authorised it); no_show releases it: nobody is charged for a consult not held."""
    await bookings.check_outcome(conn, principal, booking_id, outcome)
    await _settle(conn, client, booking_id, capture=outcome is BookingStatus.completed)
    booking = await bookings.record_outcome(conn, principal, booking_id, outcome)
    return _with_fee(booking, await consult_fees.get_fee(conn, booking_id), principal.user_id)
