"""Consult fees against localstripe: held by a manual-capture PaymentIntent, captured when the
consult completes, released when the booking is cancelled; every Stripe call keyed by the
booking id (the keys' presence is checked against a local endpoint: localstripe ignores them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import stripe
from aiohttp import web

from domain.commerce import consult_fees, payments
from domain.commerce.consult_fees import FeeStatus
from domain.errors import Conflict, Invalid
from domain.scheduling.booking_rules import Booking, BookingKind
from tests.conftest import BookedPet, BookPet
from tests.payments.conftest import outbox_count, pay
from tests.payments.fake_stripe import serve_local


async def _booking_paid_events(pool: asyncpg.Pool, booking: Booking) -> int:
    return await outbox_count(pool, "booking.paid", "booking_id", booking.id)


@pytest.mark.parametrize(
    ("ends", "refused", "ended", "intent_status", "paid_events"),
    [
        pytest.param("capture", "release", FeeStatus.captured, "succeeded", 1, id="completion"),
        pytest.param("release", "capture", FeeStatus.released, "canceled", 0, id="cancellation"),
    ],
)
async def test_an_authorised_hold_ends_once_by_completion_or_cancellation(
    pool: asyncpg.Pool,
    booked_pet: BookedPet,
    stripe_api: stripe.StripeClient,
    ends: str,
    refused: str,
    ended: FeeStatus,
    intent_status: str,
    paid_events: int,
) -> None:
    """Completion captures, cancellation releases; either is repeatable and excludes the other."""
    booking = booked_pet.booking
    async with pool.acquire() as conn:
        held = await consult_fees.hold_consult_fee(conn, stripe_api, booking, 4500, "eur")
        assert await consult_fees.hold_consult_fee(conn, stripe_api, booking, 4500, "eur") == held
    intent = await stripe_api.v1.payment_intents.retrieve_async(held.payment_intent_id)
    assert (intent.amount, intent.currency, intent.capture_method) == (4500, "eur", "manual")
    assert intent.metadata["booking_id"] == str(booking.id)

    authorised = await pay(stripe_api, held.payment_intent_id)  # the owner's card, via Stripe.js
    assert authorised.status == "requires_capture"

    end = {"capture": consult_fees.capture_consult_fee, "release": consult_fees.release_consult_fee}
    async with pool.acquire() as conn:
        fee = await end[ends](conn, stripe_api, booking.id)
        again = await end[ends](conn, stripe_api, booking.id)
        assert fee.status is again.status is ended
        with pytest.raises(Conflict):
            await end[refused](conn, stripe_api, booking.id)
    final = await stripe_api.v1.payment_intents.retrieve_async(held.payment_intent_id)
    assert final.status == intent_status
    assert await _booking_paid_events(pool, booking) == paid_events


async def test_an_unconfirmed_hold_is_released_but_cannot_be_captured(
    pool: asyncpg.Pool, booked_pet: BookedPet, stripe_api: stripe.StripeClient
) -> None:
    booking = booked_pet.booking
    async with pool.acquire() as conn:
        held = await consult_fees.hold_consult_fee(conn, stripe_api, booking, 3000, "eur")
        with pytest.raises(Conflict):  # no card authorised yet
            await consult_fees.capture_consult_fee(conn, stripe_api, booking.id)
        fee = await consult_fees.release_consult_fee(conn, stripe_api, booking.id)
    assert fee.status is FeeStatus.released
    intent = await stripe_api.v1.payment_intents.retrieve_async(held.payment_intent_id)
    assert intent.status == "canceled"


async def test_only_video_bookings_hold_a_fee(
    pool: asyncpg.Pool, book_pet: BookPet, stripe_api: stripe.StripeClient
) -> None:
    booking = (await book_pet(BookingKind.in_person)).booking
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

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/payment_intents", self.handle),
            web.post("/v1/payment_intents/{id}/capture", self.handle),
            web.post("/v1/payment_intents/{id}/cancel", self.handle),
            web.get("/v1/payment_intents/{id}", self.retrieve),
        ]


@pytest.fixture
async def fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    async with serve_local(*fake.routes()) as url:
        yield fake, url


async def test_every_call_carries_a_key_derived_from_the_booking(
    pool: asyncpg.Pool, book_pet: BookPet, fake_stripe: tuple[FakeStripe, str]
) -> None:
    fake, url = fake_stripe
    client = payments.stripe_client("sk_test_pawhub", url)
    captured, released = (await book_pet()).booking, (await book_pet()).booking
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
