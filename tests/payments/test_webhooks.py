"""Stripe webhooks: verified with stripe's own signature scheme, applied once, safe out of order."""

from __future__ import annotations

import time

import asyncpg
import httpx
import stripe

from domain.identity import Role
from tests.payments.conftest import (
    MakeProduct,
    charge_of,
    deliver,
    pay,
    place_order,
    stock_of,
    stripe_event,
)
from tests.rest.conftest import MakeUser, bearer


async def _status(api: httpx.AsyncClient, token: str, order_id: str) -> str:
    status: str = (await api.get(f"/v1/orders/{order_id}", headers=bearer(token))).json()["status"]
    return status


async def _paid_events(pool: asyncpg.Pool, order_id: str) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = 'order.paid' AND payload->>'order_id' = $1",
        order_id,
    )
    return count


async def test_forged_unsigned_and_stale_deliveries_are_400(api: httpx.AsyncClient) -> None:
    event = stripe_event("payment_intent.succeeded", {"id": "pi_nope"})
    forged = await deliver(api, event, secret="whsec_someone_else")
    assert forged.status_code == 400
    assert forged.headers["content-type"].startswith("application/problem+json")
    stale = await deliver(api, event, at=int(time.time()) - 301)
    assert stale.status_code == 400
    unsigned = await api.post("/v1/webhooks/stripe", content=b"{}")
    assert unsigned.status_code == 400
    fresh = await deliver(api, event, at=int(time.time()) - 200)
    assert fresh.status_code == 200, fresh.text


async def test_the_same_event_five_times_has_one_effect(
    api: httpx.AsyncClient,
    make_user: MakeUser,
    make_product: MakeProduct,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
) -> None:
    _, token = await make_user(Role.owner)
    product = await make_product(stock=5)
    created = await place_order(api, token, product.variants[0].id, 2)
    intent = await pay(stripe_api, created["payment_intent_id"])
    event = stripe_event("payment_intent.succeeded", {"id": intent.id})
    answers = [(await deliver(api, event)).json()["applied"] for _ in range(5)]
    assert answers == [True, False, False, False, False]
    assert await _status(api, token, created["order"]["id"]) == "paid"
    assert await _paid_events(pool, created["order"]["id"]) == 1
    assert await stock_of(pool, product) == 3


async def test_refund_moves_the_order_to_refunded_and_restocks_once(
    api: httpx.AsyncClient,
    make_user: MakeUser,
    make_product: MakeProduct,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
) -> None:
    _, token = await make_user(Role.owner)
    product = await make_product(stock=5, price_minor=1000)
    created = await place_order(api, token, product.variants[0].id, 2)
    order_id = created["order"]["id"]
    intent = await pay(stripe_api, created["payment_intent_id"])
    await deliver(api, stripe_event("payment_intent.succeeded", {"id": intent.id}))
    assert await stock_of(pool, product) == 3

    await stripe_api.v1.refunds.create_async({"payment_intent": intent.id, "amount": 500})
    charge = {"id": charge_of(intent), "object": "charge", "payment_intent": intent.id}
    partial = stripe_event("charge.refunded", charge)
    assert (await deliver(api, partial)).status_code == 200
    assert await _status(api, token, order_id) == "partially_refunded"
    assert await stock_of(pool, product) == 3

    await stripe_api.v1.refunds.create_async({"payment_intent": intent.id, "amount": 1500})
    full = stripe_event("charge.refunded", charge)
    for _ in range(3):
        assert (await deliver(api, full)).status_code == 200
    assert await _status(api, token, order_id) == "refunded"
    assert await stock_of(pool, product) == 5


async def test_out_of_order_events_reach_the_right_final_state(
    api: httpx.AsyncClient,
    make_user: MakeUser,
    make_product: MakeProduct,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
) -> None:
    """The refund's event arrives before the payment's, and a stale failure arrives last."""
    _, token = await make_user(Role.owner)
    product = await make_product(stock=4)
    created = await place_order(api, token, product.variants[0].id, 1)
    order_id = created["order"]["id"]
    intent = await pay(stripe_api, created["payment_intent_id"])
    assert intent.status == "succeeded"
    await stripe_api.v1.refunds.create_async({"payment_intent": intent.id})
    refunded = stripe_event(
        "charge.refunded", {"id": charge_of(intent), "payment_intent": intent.id}
    )
    assert (await deliver(api, refunded)).status_code == 200
    assert await _status(api, token, order_id) == "refunded"
    for late in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        assert (await deliver(api, stripe_event(late, {"id": intent.id}))).status_code == 200
    assert await _status(api, token, order_id) == "refunded"
    assert await stock_of(pool, product) == 4
    assert await _paid_events(pool, order_id) == 1


async def test_a_declined_payment_leaves_the_order_awaiting_payment(
    api: httpx.AsyncClient,
    make_user: MakeUser,
    make_product: MakeProduct,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
) -> None:
    _, token = await make_user(Role.owner)
    product = await make_product(stock=2)
    created = await place_order(api, token, product.variants[0].id, 1)
    failed = await pay(stripe_api, created["payment_intent_id"], card="4000000000000341")
    assert failed.status == "requires_payment_method"
    event = stripe_event("payment_intent.payment_failed", {"id": failed.id})
    assert (await deliver(api, event)).json()["applied"] is True
    assert await _status(api, token, created["order"]["id"]) == "pending_payment"
    assert await stock_of(pool, product) == 1


async def test_a_canceled_payment_intent_cancels_the_order(
    api: httpx.AsyncClient,
    make_user: MakeUser,
    make_product: MakeProduct,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
) -> None:
    _, token = await make_user(Role.owner)
    product = await make_product(stock=3)
    created = await place_order(api, token, product.variants[0].id, 3)
    assert await stock_of(pool, product) == 0
    intent = await stripe_api.v1.payment_intents.cancel_async(created["payment_intent_id"])
    assert (
        await deliver(api, stripe_event("payment_intent.canceled", {"id": intent.id}))
    ).status_code == 200
    assert await _status(api, token, created["order"]["id"]) == "cancelled"
    assert await stock_of(pool, product) == 3
