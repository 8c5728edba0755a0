"""Stripe webhooks: verified with stripe's own signature scheme, applied once, safe out of order."""

from __future__ import annotations

import time

import httpx

from tests.payments.conftest import (
    PaidOrder,
    Shop,
    charge_of,
    deliver,
    outbox_count,
    pay,
    stripe_event,
)


async def _paid_events(shop: Shop, order_id: str) -> int:
    return await outbox_count(shop.pool, "order.paid", "order_id", order_id)


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


async def test_the_same_event_five_times_has_one_effect(shop: Shop, paid_order: PaidOrder) -> None:
    order = paid_order.placed
    event = stripe_event("payment_intent.succeeded", {"id": paid_order.intent.id})
    answers = [(await deliver(shop.api, event)).json()["applied"] for _ in range(5)]
    assert answers == [True, False, False, False, False]
    assert await shop.status(order) == "paid"
    assert await _paid_events(shop, order.id) == 1
    assert await shop.stock(order) == 3


async def test_refund_moves_the_order_to_refunded_and_restocks_once(
    shop: Shop, paid_order: PaidOrder
) -> None:
    order, intent, api = paid_order.placed, paid_order.intent, shop.api
    await deliver(api, stripe_event("payment_intent.succeeded", {"id": intent.id}))
    assert await shop.stock(order) == 3

    await shop.stripe.v1.refunds.create_async({"payment_intent": intent.id, "amount": 500})
    charge = {"id": charge_of(intent), "object": "charge", "payment_intent": intent.id}
    partial = stripe_event("charge.refunded", charge)
    assert (await deliver(api, partial)).status_code == 200
    assert await shop.status(order) == "partially_refunded"
    assert await shop.stock(order) == 3

    await shop.stripe.v1.refunds.create_async({"payment_intent": intent.id, "amount": 1500})
    full = stripe_event("charge.refunded", charge)
    for _ in range(3):
        assert (await deliver(api, full)).status_code == 200
    assert await shop.status(order) == "refunded"
    assert await shop.stock(order) == 5


async def test_out_of_order_events_reach_the_right_final_state(
    shop: Shop, paid_order: PaidOrder
) -> None:
    """The refund's event arrives before the payment's, and a stale failure arrives last."""
    order, intent, api = paid_order.placed, paid_order.intent, shop.api
    await shop.stripe.v1.refunds.create_async({"payment_intent": intent.id})
    refunded = stripe_event(
        "charge.refunded", {"id": charge_of(intent), "payment_intent": intent.id}
    )
    assert (await deliver(api, refunded)).status_code == 200
    assert await shop.status(order) == "refunded"
    for late in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        assert (await deliver(api, stripe_event(late, {"id": intent.id}))).status_code == 200
    assert await shop.status(order) == "refunded"
    assert await shop.stock(order) == 5
    assert await _paid_events(shop, order.id) == 1


async def test_a_declined_payment_leaves_the_order_awaiting_payment(shop: Shop) -> None:
    order = await shop.order(stock=2, quantity=1)
    failed = await pay(shop.stripe, order.payment_intent_id, card="4000000000000341")
    assert failed.status == "requires_payment_method"
    event = stripe_event("payment_intent.payment_failed", {"id": failed.id})
    assert (await deliver(shop.api, event)).json()["applied"] is True
    assert await shop.status(order) == "pending_payment"
    assert await shop.stock(order) == 1


async def test_a_canceled_payment_intent_cancels_the_order(shop: Shop) -> None:
    order = await shop.order(stock=3, quantity=3)
    assert await shop.stock(order) == 0
    intent = await shop.stripe.v1.payment_intents.cancel_async(order.payment_intent_id)
    canceled = stripe_event("payment_intent.canceled", {"id": intent.id})
    assert (await deliver(shop.api, canceled)).status_code == 200
    assert await shop.status(order) == "cancelled"
    assert await shop.stock(order) == 3
