"""Wellness plans subscribed and cancelled over the live API, on localstripe; the mirror keeps
following Stripe through webhooks."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import httpx
import stripe

from domain.commerce import subscriptions
from domain.commerce.customers import ensure_customer
from domain.identity import Role
from tests.payments.conftest import deliver, stripe_event
from tests.rest.conftest import MakeUser, bearer

CARD_DECLINED = "4000000000000341"  # attaches, then every charge is declined


async def _pet(api: httpx.AsyncClient, token: str) -> str:
    response = await api.post(
        "/v1/pets", json={"name": "Mia", "species": "cat"}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    pet_id: str = response.json()["id"]
    return pet_id


async def _save_card(
    pool: asyncpg.Pool, client: stripe.StripeClient, user_id: Any, card: str = "4242424242424242"
) -> None:
    """What Stripe.js with a SetupIntent does: the owner's customer gets a default card."""
    customer = await ensure_customer(pool, client, user_id)
    method = await client.v1.payment_methods.create_async(
        {"type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2040, "cvc": "123"}}
    )
    await client.v1.payment_methods.attach_async(method.id, {"customer": customer})
    await client.v1.customers.update_async(
        customer, {"invoice_settings": {"default_payment_method": method.id}}
    )


async def test_an_owner_subscribes_a_pet_and_cancels(
    fee_api: httpx.AsyncClient,
    make_user: MakeUser,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
    wellness_plan: str,
) -> None:
    owner, token = await make_user(Role.owner)
    _, stranger = await make_user(Role.owner)
    _, vet = await make_user(Role.vet)
    pet_id = await _pet(fee_api, token)
    await _save_card(pool, stripe_api, owner.id)

    assert (
        await fee_api.post("/v1/wellness-plans", json={"pet_id": pet_id}, headers=bearer(vet))
    ).status_code == 403
    theirs = await fee_api.post(
        "/v1/wellness-plans", json={"pet_id": pet_id}, headers=bearer(stranger)
    )
    assert theirs.status_code == 404
    created = await fee_api.post(
        "/v1/wellness-plans", json={"pet_id": pet_id}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text
    plan = created.json()
    assert (plan["status"], plan["plan_id"], plan["pet_id"]) == ("active", wellness_plan, pet_id)
    assert plan["client_secret"] is None
    at_stripe = await stripe_api.v1.subscriptions.retrieve_async(plan["id"])
    assert at_stripe.metadata["pet_id"] == pet_id

    twice = await fee_api.post("/v1/wellness-plans", json={"pet_id": pet_id}, headers=bearer(token))
    assert twice.status_code == 409
    listed = await fee_api.get("/v1/wellness-plans", headers=bearer(token))
    assert [p["id"] for p in listed.json()] == [plan["id"]]

    cancel = f"/v1/wellness-plans/{plan['id']}/cancel"
    assert (await fee_api.post(cancel, headers=bearer(stranger))).status_code == 404
    later = await fee_api.post(cancel, headers=bearer(token))
    assert later.status_code == 200, later.text
    assert (later.json()["status"], later.json()["cancel_at_period_end"]) == ("active", True)
    now = await fee_api.post(cancel, json={"at_period_end": False}, headers=bearer(token))
    assert now.status_code == 200, now.text
    assert now.json()["status"] == "canceled"
    # A webhook about the old state changes nothing: the mirror re-reads Stripe.
    stale = stripe_event("customer.subscription.updated", at_stripe.to_dict())
    assert (await deliver(fee_api, stale)).status_code == 200
    listed = await fee_api.get("/v1/wellness-plans", headers=bearer(token))
    assert [p["status"] for p in listed.json()] == ["canceled"]

    again = await fee_api.post("/v1/wellness-plans", json={"pet_id": pet_id}, headers=bearer(token))
    assert again.status_code == 201, again.text
    assert again.json()["id"] != plan["id"]


async def test_a_declined_first_invoice_hands_the_app_its_client_secret(
    fee_api: httpx.AsyncClient,
    make_user: MakeUser,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
) -> None:
    """The plan is `incomplete` and the app gets the first invoice's PaymentIntent secret to
    retry with another card (localstripe cannot confirm an intent again after a decline, so
    the retry itself is not run here)."""
    owner, token = await make_user(Role.owner)
    pet_id = await _pet(fee_api, token)
    await _save_card(pool, stripe_api, owner.id, card=CARD_DECLINED)
    created = await fee_api.post(
        "/v1/wellness-plans", json={"pet_id": pet_id}, headers=bearer(token)
    )
    assert created.status_code == 201, created.text
    plan = created.json()
    assert plan["status"] == "incomplete"
    sub = (await stripe_api.v1.subscriptions.retrieve_async(plan["id"])).to_dict()
    invoice = (await stripe_api.v1.invoices.retrieve_async(sub["latest_invoice"])).to_dict()
    intent = await stripe_api.v1.payment_intents.retrieve_async(invoice["payment_intent"])
    assert plan["client_secret"] == intent.client_secret
    failed = stripe_event("invoice.payment_failed", {"id": invoice["id"], "object": "invoice"})
    assert (await deliver(fee_api, failed)).status_code == 200
    mirrored = await subscriptions.get_subscription(pool, plan["id"])
    assert mirrored is not None
    assert (mirrored.pet_id, mirrored.last_invoice_status) == (UUID(pet_id), "payment_failed")


async def test_without_any_card_localstripe_refuses_and_nothing_is_stored(
    fee_api: httpx.AsyncClient, make_user: MakeUser
) -> None:
    """Stripe itself would create an `incomplete` subscription; localstripe refuses (a gap)."""
    _, token = await make_user(Role.owner)
    pet_id = await _pet(fee_api, token)
    refused = await fee_api.post(
        "/v1/wellness-plans", json={"pet_id": pet_id}, headers=bearer(token)
    )
    assert refused.status_code == 502
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await fee_api.get("/v1/wellness-plans", headers=bearer(token))).json() == []


async def test_without_a_configured_plan_subscribing_is_503(
    api: httpx.AsyncClient, make_user: MakeUser
) -> None:
    _, token = await make_user(Role.owner)
    pet_id = await _pet(api, token)
    response = await api.post("/v1/wellness-plans", json={"pet_id": pet_id}, headers=bearer(token))
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
