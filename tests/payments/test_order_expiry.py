"""Orders unpaid past ORDER_PAYMENT_DEADLINE_MIN are cancelled by the API's periodic job: the
PaymentIntent is cancelled at localstripe and the stock comes back. An order paid at Stripe whose
webhook is still on its way is moved to paid instead."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from uuid import UUID

import asyncpg
import stripe

from domain.commerce import orders, payments
from domain.commerce.orders import NewOrder, OrderItem, OrderStatus
from domain.identity import Role
from tests.payments.conftest import MakeProduct, Shop, outbox_count, pay, place_order, stock_of
from tests.rest.conftest import MakeUser


async def _backdate(pool: asyncpg.Pool, order_id: object, minutes: int = 31) -> None:
    await pool.execute(
        "UPDATE orders SET created_at = now() - make_interval(mins => $2) WHERE id = $1",
        UUID(str(order_id)),
        minutes,
    )


async def _status(pool: asyncpg.Pool, order_id: object) -> str:
    status: str = await pool.fetchval(
        "SELECT status FROM orders WHERE id = $1", UUID(str(order_id))
    )
    return status


async def test_the_api_job_cancels_an_order_unpaid_past_its_deadline(shop: Shop) -> None:
    body = await shop.order(stock=3, quantity=2)
    fresh = await place_order(shop.api, shop.token, body.product.variants[0].id, 1)
    assert await shop.stock(body) == 0
    await _backdate(shop.pool, body.id)

    deadline = time.monotonic() + 20  # the job runs every 5 s
    while await _status(shop.pool, body.id) != "cancelled":
        assert time.monotonic() < deadline, "the periodic job did not expire the order"
        await asyncio.sleep(0.2)
    assert await shop.stock(body) == 2
    intent = await shop.stripe.v1.payment_intents.retrieve_async(body.payment_intent_id)
    assert intent.status == "canceled"
    assert await _status(shop.pool, fresh["order"]["id"]) == "pending_payment"


async def test_expiry_moves_a_late_paid_order_forward_and_cancels_one_never_started(
    make_user: MakeUser,
    make_product: MakeProduct,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
) -> None:
    buyer, _ = await make_user(Role.owner)
    product = await make_product(stock=5, price_minor=800)
    item = [OrderItem(variant_id=product.variants[0].id, quantity=2)]
    async with pool.acquire() as conn:
        paid = await orders.create_order(conn, buyer.id, NewOrder(items=item))
        payment = await payments.start_payment(conn, stripe_api, paid)
        # Stripe failed before a PaymentIntent existed: the order holds stock with nothing to pay.
        unstarted = await orders.create_order(conn, buyer.id, NewOrder(items=item))
    assert (await pay(stripe_api, payment.payment_intent_id)).status == "succeeded"
    for order in (paid, unstarted):
        await _backdate(pool, order.id)
    async with pool.acquire() as conn:
        await payments.expire_unpaid_orders(conn, stripe_api, timedelta(minutes=30))
        await payments.expire_unpaid_orders(conn, stripe_api, timedelta(minutes=30))
    assert await _status(pool, paid.id) == OrderStatus.paid
    assert await _status(pool, unstarted.id) == OrderStatus.cancelled
    assert await stock_of(pool, product) == 3
    assert await outbox_count(pool, "order.paid", "order_id", paid.id) == 1
