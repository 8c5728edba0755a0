"""Consult fees: a video booking's fee is authorised with a manual-capture PaymentIntent when it
is booked, captured when the consult completes and released (the PaymentIntent cancelled) when
the booking is cancelled. Every Stripe call carries an idempotency key derived from the booking
id, and each step is safe to repeat: it reads the PaymentIntent's state at Stripe first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

import stripe
from stripe import PaymentIntent, PaymentIntentService, RequestOptions
from stripe.params import PaymentIntentCreateParams

from domain import outbox
from domain.commerce.payments import Payment, idempotency_key
from domain.commerce.payouts import Destination
from domain.db import Conn, Db
from domain.errors import Conflict, Invalid, NotFound
from domain.scheduling.booking_rules import Booking, BookingKind
from domain.scheduling.bookings import confirm_requested

# The PaymentIntent states Stripe lets us cancel.
_CANCELLABLE = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)


class FeeStatus(StrEnum):
    held = "held"
    captured = "captured"
    released = "released"


@dataclass(frozen=True)
class ConsultFee:
    booking_id: UUID
    payment_intent_id: str
    client_secret: str
    amount_minor: int
    currency: str
    status: FeeStatus


async def get_fee(db: Db, booking_id: UUID) -> ConsultFee | None:
    row = await db.fetchrow(
        """SELECT booking_id, payment_intent_id, client_secret, amount_minor, currency, status
             FROM consult_fees WHERE booking_id = $1""",
        booking_id,
    )
    if row is None:
        return None
    return ConsultFee(**{**dict(row), "status": FeeStatus(row["status"])})


async def hold_consult_fee(
    conn: Conn,
    client: stripe.StripeClient,
    booking: Booking,
    amount_minor: int,
    currency: str,
    *,
    customer: str | None = None,
    destination: Destination | None = None,
) -> Payment:
    """The booking's manual-capture PaymentIntent, created once (a retry finds it stored, and
    Stripe answers a repeated create with the same key by the first PaymentIntent). The owner
    confirms it with their card (Stripe.js), which authorises the amount without charging it.
    With a `destination` it is a Connect destination charge paying the vet. A `requested`
    booking is confirmed in the transaction that stores the fee."""
    if booking.kind is not BookingKind.video:
        raise Invalid("only a video booking holds a consult fee")
    if amount_minor <= 0:
        raise Invalid("a consult fee must be positive")
    stored = await get_fee(conn, booking.id)
    if stored is not None:
        return Payment(stored.payment_intent_id, stored.client_secret)
    params: PaymentIntentCreateParams = {
        "amount": amount_minor,
        "currency": currency,
        "capture_method": "manual",
        "metadata": {"booking_id": str(booking.id)},
    }
    if customer is not None:
        params["customer"] = customer
    if destination is not None:
        destination.apply_to(params)
    intent = await client.v1.payment_intents.create_async(
        params, {"idempotency_key": idempotency_key("consult-fee", booking.id)}
    )
    assert intent.client_secret is not None
    async with conn.transaction():
        await conn.execute(
            """INSERT INTO consult_fees
                   (booking_id, payment_intent_id, client_secret, amount_minor, currency, status,
                    destination, application_fee_minor)
               VALUES ($1, $2, $3, $4, $5, 'held', $6, $7)
               ON CONFLICT (booking_id) DO NOTHING""",
            booking.id,
            intent.id,
            intent.client_secret,
            amount_minor,
            currency,
            destination.account_id if destination else None,
            destination.application_fee_minor if destination else None,
        )
        await confirm_requested(conn, booking.id, booking.owner_id)
    return Payment(intent.id, intent.client_secret)


async def _lock_fee(conn: Conn, booking_id: UUID) -> ConsultFee:
    row = await conn.fetchrow(
        "SELECT booking_id FROM consult_fees WHERE booking_id = $1 FOR UPDATE", booking_id
    )
    fee = await get_fee(conn, booking_id) if row is not None else None
    if fee is None:
        raise NotFound("no fee is held for this booking")
    return fee


async def _set_status(conn: Conn, booking_id: UUID, status: FeeStatus) -> None:
    await conn.execute(
        "UPDATE consult_fees SET status = $2, updated_at = now() WHERE booking_id = $1",
        booking_id,
        status.value,
    )


@dataclass(frozen=True)
class _Settlement:
    """How a held fee is settled: the Stripe call and its idempotency key's prefix, the
    PaymentIntent states it acts on and the one it leaves, the fee's status then, and the Conflict
    when it was settled the other way."""

    status: FeeStatus
    key_prefix: str
    call: Callable[[PaymentIntentService, str, RequestOptions], Awaitable[PaymentIntent]]
    acts_on: frozenset[str]
    reaches: str
    settled_otherwise: str


_CAPTURE = _Settlement(
    status=FeeStatus.captured,
    key_prefix="consult-capture",
    call=lambda intents, intent_id, options: intents.capture_async(intent_id, options=options),
    acts_on=frozenset({"requires_capture"}),
    reaches="succeeded",
    settled_otherwise="the consult fee was released",
)
_RELEASE = _Settlement(
    status=FeeStatus.released,
    key_prefix="consult-release",
    call=lambda intents, intent_id, options: intents.cancel_async(intent_id, options=options),
    acts_on=_CANCELLABLE,
    reaches="canceled",
    settled_otherwise="the consult fee was already captured",
)


async def _settle(
    conn: Conn, client: stripe.StripeClient, booking_id: UUID, settlement: _Settlement
) -> tuple[ConsultFee, bool]:
    """The fee, settled under its row lock, and whether this call settled it (a repeat finds it
    settled already). Stripe's PaymentIntent is read first, so a retry after a lost answer only
    records what Stripe already did."""
    fee = await _lock_fee(conn, booking_id)
    if fee.status is settlement.status:
        return fee, False
    if fee.status is not FeeStatus.held:
        raise Conflict(settlement.settled_otherwise)
    intents = client.v1.payment_intents
    intent = await intents.retrieve_async(fee.payment_intent_id)
    if intent.status in settlement.acts_on:
        key = idempotency_key(settlement.key_prefix, booking_id)
        intent = await settlement.call(intents, fee.payment_intent_id, {"idempotency_key": key})
    if intent.status != settlement.reaches:
        raise Conflict(f"the consult fee cannot be {settlement.status} from {intent.status}")
    await _set_status(conn, booking_id, settlement.status)
    return await _lock_fee(conn, booking_id), True


async def capture_consult_fee(
    conn: Conn, client: stripe.StripeClient, booking_id: UUID
) -> ConsultFee:
    """Charge the held fee once the consult completed; a repeat is a no-op. The `booking.paid`
    domain event goes to the outbox in the transaction that records the capture."""
    async with conn.transaction():
        fee, captured_now = await _settle(conn, client, booking_id, _CAPTURE)
        if captured_now:
            await outbox.append(
                conn,
                "booking.paid",
                {
                    "booking_id": str(booking_id),
                    "amount_minor": fee.amount_minor,
                    "currency": fee.currency,
                },
            )
        return fee


async def release_consult_fee(
    conn: Conn, client: stripe.StripeClient, booking_id: UUID
) -> ConsultFee:
    """Cancel the held fee's PaymentIntent when the booking is cancelled; a repeat is a no-op.
    A fee already captured is not released (that is a refund, decided elsewhere): Conflict."""
    async with conn.transaction():
        fee, _ = await _settle(conn, client, booking_id, _RELEASE)
        return fee
