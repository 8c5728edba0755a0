"""Consult fees wired into bookings, over the live API: a paid video booking holds the fee at
localstripe, completing it captures (booking.paid in the outbox), cancelling releases; a refused
hold cancels the booking (502) so no slot stays taken without a payment."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import httpx
import stripe

from domain.scheduling.bookings import cancel_stale_requests
from tests.payments.conftest import CONSULT_FEE, Parties, consult_parties, outbox_count, pay
from tests.payments.fake_stripe import FakeStripe
from tests.rest.conftest import MakeUser, bearer


async def _paid_events(pool: asyncpg.Pool, booking_id: str) -> int:
    return await outbox_count(pool, "booking.paid", "booking_id", booking_id)


async def test_a_video_booking_holds_the_fee_and_completion_captures_it(
    parties: Parties, pool: asyncpg.Pool, stripe_api: stripe.StripeClient
) -> None:
    booking = await parties.booked()
    assert booking["status"] == "confirmed" and booking["consult_id"]
    fee = booking["fee"]
    assert (fee["amount_minor"], fee["currency"], fee["status"]) == (CONSULT_FEE, "eur", "held")
    assert fee["client_secret"].startswith(fee["payment_intent_id"])
    assert [h["status"] for h in booking["history"]] == ["requested", "confirmed"]

    intent = await stripe_api.v1.payment_intents.retrieve_async(fee["payment_intent_id"])
    assert (intent.amount, intent.capture_method) == (CONSULT_FEE, "manual")
    customer = await stripe_api.v1.customers.retrieve_async(str(intent.customer))
    assert customer.metadata["user_id"] == str(parties.owner.id)

    seen_by_vet = await parties.api.get(
        f"/v1/bookings/{booking['id']}", headers=bearer(parties.vet_token)
    )
    assert seen_by_vet.json()["fee"]["client_secret"] is None

    assert (await pay(stripe_api, fee["payment_intent_id"])).status == "requires_capture"
    path = f"/v1/bookings/{booking['id']}"
    assert (
        await parties.api.post(f"{path}/complete", headers=bearer(parties.owner_token))
    ).status_code == 403
    completed = await parties.api.post(f"{path}/complete", headers=bearer(parties.vet_token))
    assert completed.status_code == 200, completed.text
    assert (completed.json()["status"], completed.json()["fee"]["status"]) == (
        "completed",
        "captured",
    )
    captured = await stripe_api.v1.payment_intents.retrieve_async(fee["payment_intent_id"])
    assert captured.status == "succeeded"
    assert await _paid_events(pool, booking["id"]) == 1
    again = await parties.api.post(f"{path}/complete", headers=bearer(parties.vet_token))
    assert again.status_code == 409
    assert await _paid_events(pool, booking["id"]) == 1


async def test_completion_waits_for_authorisation_and_cancelling_releases_the_fee(
    parties: Parties, pool: asyncpg.Pool, stripe_api: stripe.StripeClient
) -> None:
    booking = await parties.booked()
    path = f"/v1/bookings/{booking['id']}"
    early = await parties.api.post(f"{path}/complete", headers=bearer(parties.vet_token))
    assert early.status_code == 409, early.text
    assert early.headers["content-type"].startswith("application/problem+json")
    unchanged = await parties.api.get(path, headers=bearer(parties.owner_token))
    assert (unchanged.json()["status"], unchanged.json()["fee"]["status"]) == ("confirmed", "held")

    await pay(stripe_api, booking["fee"]["payment_intent_id"])
    cancelled = await parties.api.post(f"{path}/cancel", headers=bearer(parties.owner_token))
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["fee"]["status"]) == (
        "cancelled",
        "released",
    )
    intent = await stripe_api.v1.payment_intents.retrieve_async(booking["fee"]["payment_intent_id"])
    assert intent.status == "canceled"
    assert await _paid_events(pool, booking["id"]) == 0
    # The slot is free again, and the owner's Stripe customer is reused.
    rebooked = await parties.booked()
    second = await stripe_api.v1.payment_intents.retrieve_async(
        rebooked["fee"]["payment_intent_id"]
    )
    assert second.customer == intent.customer


async def test_an_in_person_booking_holds_no_fee(parties: Parties) -> None:
    response = await parties.book(kind="in_person")
    assert response.status_code == 201, response.text
    assert (response.json()["status"], response.json()["fee"]) == ("confirmed", None)


async def test_racers_for_a_paid_slot_hold_exactly_one_fee(
    parties: Parties, pool: asyncpg.Pool
) -> None:
    responses = await asyncio.gather(*(parties.book(11) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    fees = await pool.fetchval(
        "SELECT count(*) FROM consult_fees f JOIN bookings b ON b.id = f.booking_id "
        "WHERE b.vet_id = $1",
        parties.vet.id,
    )
    assert fees == 1


async def test_a_refused_hold_cancels_the_booking_and_answers_502(
    fake_stripe_api: tuple[FakeStripe, httpx.AsyncClient], make_user: MakeUser, pool: asyncpg.Pool
) -> None:
    fake, api = fake_stripe_api
    parties = await consult_parties(api, make_user)
    fake.decline = "Your card was declined."
    refused = await parties.book()
    assert refused.status_code == 502, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "declined" in refused.json()["detail"]
    statuses = await pool.fetch(
        "SELECT h.status FROM booking_status_history h JOIN bookings b ON b.id = h.booking_id "
        "WHERE b.owner_id = $1 ORDER BY h.id",
        parties.owner.id,
    )
    assert [row["status"] for row in statuses] == ["requested", "cancelled"]
    fake.decline = None
    retried = await parties.book()
    assert retried.status_code == 201, retried.text


async def test_one_customer_per_owner_and_every_create_is_keyed(
    fake_stripe_api: tuple[FakeStripe, httpx.AsyncClient], make_user: MakeUser
) -> None:
    fake, api = fake_stripe_api
    parties = await consult_parties(api, make_user)
    first = await parties.booked(9)
    second = await parties.booked(13)
    customers = fake.to("/v1/customers")
    assert [(c.idempotency_key, c.form["metadata[user_id]"]) for c in customers] == [
        (f"pawhub-customer-{parties.owner.id}", str(parties.owner.id))
    ]
    intents = fake.to("/v1/payment_intents")
    assert [i.idempotency_key for i in intents] == [
        f"pawhub-consult-fee-{first['id']}",
        f"pawhub-consult-fee-{second['id']}",
    ]
    assert len({i.form["customer"] for i in intents}) == 1
    assert "transfer_data[destination]" not in intents[0].form  # this vet has no Connect account


async def test_a_requested_booking_without_a_fee_is_swept(
    parties: Parties, pool: asyncpg.Pool
) -> None:
    """The API died between taking the slot and Stripe's answer: the periodic job frees it."""
    booking = await parties.booked()
    orphan: str = str(
        await pool.fetchval(
            "INSERT INTO bookings (vet_id, owner_id, pet_id, kind, starts_at, ends_at, blocked, "
            "status, created_at) SELECT vet_id, owner_id, pet_id, kind, starts_at + interval "
            "'2 hours', ends_at + interval '2 hours', tstzrange(starts_at + interval '2 hours', "
            "ends_at + interval '2 hours'), 'requested', now() - interval '1 hour' "
            "FROM bookings WHERE id = $1 RETURNING id",
            booking["id"],
        )
    )
    async with pool.acquire() as conn:
        assert await cancel_stale_requests(conn, timedelta(minutes=10)) >= 1
    statuses = await pool.fetch(
        "SELECT id::text, status FROM bookings WHERE owner_id = $1", parties.owner.id
    )
    assert dict((row["id"], row["status"]) for row in statuses) == {
        booking["id"]: "confirmed",
        orphan: "cancelled",
    }
