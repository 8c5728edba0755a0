"""Consult fees against localstripe: held by a manual-capture PaymentIntent, captured when the
consult completes, released when the booking is cancelled; every Stripe call keyed by the
booking id (the keys' presence is checked against a local endpoint: localstripe ignores them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import stripe
from aiohttp import web

from domain import consult_fees, payments
from domain.availability import Availability, WeeklyWindow, set_availability
from domain.bookings import Booking, BookingKind, NewBooking, create_booking
from domain.consult_fees import FeeStatus
from domain.errors import Conflict, Invalid
from domain.identity import Role
from domain.pets import NewPet, create_pet
from tests.payments.conftest import pay
from tests.payments.fake_stripe import serve_local
from tests.rest.conftest import MakeUser


async def _booking(
    pool: asyncpg.Pool, make_user: MakeUser, kind: BookingKind = BookingKind.video
) -> Booking:
    owner, _ = await make_user(Role.owner)
    vet, _ = await make_user(Role.vet)
    async with pool.acquire() as conn:
        await set_availability(
            conn,
            vet.id,
            Availability(
                time_zone="UTC",
                weekly=[WeeklyWindow(weekday=d, start="00:00", end="24:00") for d in range(7)],
            ),
        )
        pet = await create_pet(conn, owner.id, NewPet(name="Rex", species="dog"))
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        new = NewBooking(vet_id=vet.id, pet_id=pet.id, start=start, duration_min=30, kind=kind)
        return await create_booking(conn, owner.id, new)


async def _booking_paid_events(pool: asyncpg.Pool, booking: Booking) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = 'booking.paid' AND payload->>'booking_id' = $1",
        str(booking.id),
    )
    return count


async def test_hold_then_capture_on_completion(
    pool: asyncpg.Pool, make_user: MakeUser, stripe_api: stripe.StripeClient
) -> None:
    booking = await _booking(pool, make_user)
    async with pool.acquire() as conn:
        held = await consult_fees.hold_consult_fee(conn, stripe_api, booking, 4500, "eur")
        assert await consult_fees.hold_consult_fee(conn, stripe_api, booking, 4500, "eur") == held
    intent = await stripe_api.v1.payment_intents.retrieve_async(held.payment_intent_id)
    assert (intent.amount, intent.currency, intent.capture_method) == (4500, "eur", "manual")
    assert intent.metadata["booking_id"] == str(booking.id)

    authorised = await pay(stripe_api, held.payment_intent_id)  # the owner's card, via Stripe.js
    assert authorised.status == "requires_capture"

    async with pool.acquire() as conn:
        fee = await consult_fees.capture_consult_fee(conn, stripe_api, booking.id)
        again = await consult_fees.capture_consult_fee(conn, stripe_api, booking.id)
        assert fee.status is again.status is FeeStatus.captured
        with pytest.raises(Conflict):
            await consult_fees.release_consult_fee(conn, stripe_api, booking.id)
    captured = await stripe_api.v1.payment_intents.retrieve_async(held.payment_intent_id)
    assert captured.status == "succeeded"
    assert await _booking_paid_events(pool, booking) == 1


async def test_release_on_cancellation_cancels_the_authorisation(
    pool: asyncpg.Pool, make_user: MakeUser, stripe_api: stripe.StripeClient
) -> None:
    booking = await _booking(pool, make_user)
    async with pool.acquire() as conn:
        held = await consult_fees.hold_consult_fee(conn, stripe_api, booking, 3000, "eur")
        assert (await pay(stripe_api, held.payment_intent_id)).status == "requires_capture"
        fee = await consult_fees.release_consult_fee(conn, stripe_api, booking.id)
        assert fee.status is FeeStatus.released
        again = await consult_fees.release_consult_fee(conn, stripe_api, booking.id)
        assert again.status is FeeStatus.released
        with pytest.raises(Conflict):
            await consult_fees.capture_consult_fee(conn, stripe_api, booking.id)
    intent = await stripe_api.v1.payment_intents.retrieve_async(held.payment_intent_id)
    assert intent.status == "canceled"
    assert await _booking_paid_events(pool, booking) == 0


async def test_an_unconfirmed_hold_is_released_but_cannot_be_captured(
    pool: asyncpg.Pool, make_user: MakeUser, stripe_api: stripe.StripeClient
) -> None:
    booking = await _booking(pool, make_user)
    async with pool.acquire() as conn:
        held = await consult_fees.hold_consult_fee(conn, stripe_api, booking, 3000, "eur")
        with pytest.raises(Conflict):  # no card authorised yet
            await consult_fees.capture_consult_fee(conn, stripe_api, booking.id)
        fee = await consult_fees.release_consult_fee(conn, stripe_api, booking.id)
    assert fee.status is FeeStatus.released
    intent = await stripe_api.v1.payment_intents.retrieve_async(held.payment_intent_id)
    assert intent.status == "canceled"


async def test_only_video_bookings_hold_a_fee(
    pool: asyncpg.Pool, make_user: MakeUser, stripe_api: stripe.StripeClient
) -> None:
    booking = await _booking(pool, make_user, BookingKind.in_person)
    async with pool.acquire() as conn:
        with pytest.raises(Invalid):
            await consult_fees.hold_consult_fee(conn, stripe_api, booking, 3000, "eur")
    assert await consult_fees.get_fee(pool, booking.id) is None


class FakeStripe:
    """Just enough of Stripe's PaymentIntent endpoints to record each request's key and form."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None, dict[str, str]]] = []
        self.status = "requires_payment_method"
        self.created = 0

    def _intent(self) -> dict[str, Any]:
        return {
            "id": f"pi_fee{self.created}",
            "object": "payment_intent",
            "amount": 3000,
            "currency": "eur",
            "capture_method": "manual",
            "client_secret": f"pi_fee{self.created}_secret_abc",
            "status": self.status,
        }

    async def handle(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append((request.path, request.headers.get("Idempotency-Key"), form))
        if request.path == "/v1/payment_intents":
            self.created += 1
            self.status = "requires_payment_method"
        elif request.path.endswith("/capture"):
            self.status = "succeeded"
        elif request.path.endswith("/cancel"):
            self.status = "canceled"
        return web.json_response(self._intent())

    async def retrieve(self, request: web.Request) -> web.Response:
        return web.json_response(self._intent())


@pytest.fixture
async def fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    app = web.Application()
    app.router.add_post("/v1/payment_intents", fake.handle)
    app.router.add_post("/v1/payment_intents/{id}/capture", fake.handle)
    app.router.add_post("/v1/payment_intents/{id}/cancel", fake.handle)
    app.router.add_get("/v1/payment_intents/{id}", fake.retrieve)
    async with serve_local(app) as url:
        yield fake, url


async def test_every_call_carries_a_key_derived_from_the_booking(
    pool: asyncpg.Pool, make_user: MakeUser, fake_stripe: tuple[FakeStripe, str]
) -> None:
    fake, url = fake_stripe
    client = payments.stripe_client("sk_test_pawhub", url)
    captured, released = await _booking(pool, make_user), await _booking(pool, make_user)
    async with pool.acquire() as conn:
        await consult_fees.hold_consult_fee(conn, client, captured, 3000, "eur")
        fake.status = "requires_capture"
        await consult_fees.capture_consult_fee(conn, client, captured.id)
        await consult_fees.hold_consult_fee(conn, client, released, 3000, "eur")
        fake.status = "requires_capture"
        await consult_fees.release_consult_fee(conn, client, released.id)
    assert [(path, key) for path, key, _ in fake.requests] == [
        ("/v1/payment_intents", f"pawhub-consult-fee-{captured.id}"),
        ("/v1/payment_intents/pi_fee1/capture", f"pawhub-consult-capture-{captured.id}"),
        ("/v1/payment_intents", f"pawhub-consult-fee-{released.id}"),
        ("/v1/payment_intents/pi_fee2/cancel", f"pawhub-consult-release-{released.id}"),
    ]
    assert fake.requests[0][2] == {
        "amount": "3000",
        "currency": "eur",
        "capture_method": "manual",
        "metadata[booking_id]": str(captured.id),
    }
