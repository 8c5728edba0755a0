"""PaymentIntents carry an idempotency key derived from the order id: a retry never charges twice.

localstripe ignores Idempotency-Key, so the key's presence on every attempt (including the
stripe library's own retry) is checked against a local endpoint speaking Stripe's protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import stripe
from aiohttp import web

from domain.commerce import orders, payments
from domain.commerce.orders import NewOrder, Order, OrderItem
from domain.identity import Role
from tests.payments.conftest import MakeProduct
from tests.payments.fake_stripe import serve_local
from tests.rest.conftest import MakeUser


async def _order(pool: asyncpg.Pool, make_user: MakeUser, make_product: MakeProduct) -> Order:
    buyer, _ = await make_user(Role.owner)
    product = await make_product(stock=3, price_minor=700)
    item = OrderItem(variant_id=product.variants[0].id, quantity=2)
    async with pool.acquire() as conn:
        return await orders.create_order(conn, buyer.id, NewOrder(items=[item]))


async def test_a_second_start_returns_the_same_payment_intent(
    pool: asyncpg.Pool,
    make_user: MakeUser,
    make_product: MakeProduct,
    stripe_api: stripe.StripeClient,
) -> None:
    order = await _order(pool, make_user, make_product)
    async with pool.acquire() as conn:
        first = await payments.start_payment(conn, stripe_api, order)
        again = await payments.start_payment(conn, stripe_api, order)
    assert again == first
    intent = await stripe_api.v1.payment_intents.retrieve_async(first.payment_intent_id)
    assert (intent.amount, intent.currency) == (1400, "eur")
    assert intent.metadata["order_id"] == str(order.id)


class FakeStripe:
    """POST /v1/payment_intents: first a retryable 503, then a PaymentIntent; records requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str | None, dict[str, str]]] = []

    async def create(self, request: web.Request) -> web.Response:
        form = dict((await request.post()).items())
        self.requests.append(
            (request.headers.get("Idempotency-Key"), {k: str(v) for k, v in form.items()})
        )
        if len(self.requests) == 1:
            return web.json_response(
                {"error": {"type": "api_error", "message": "try again"}},
                status=503,
                headers={"Stripe-Should-Retry": "true"},
            )
        intent: dict[str, Any] = {
            "id": "pi_fake123",
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": form["currency"],
            "client_secret": "pi_fake123_secret_abc",
            "status": "requires_payment_method",
        }
        return web.json_response(intent)


@pytest.fixture
async def fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    async with serve_local(web.post("/v1/payment_intents", fake.create)) as url:
        yield fake, url


async def test_every_attempt_carries_the_key_derived_from_the_order(
    pool: asyncpg.Pool,
    make_user: MakeUser,
    make_product: MakeProduct,
    fake_stripe: tuple[FakeStripe, str],
) -> None:
    fake, url = fake_stripe
    client = payments.stripe_client("sk_test_pawhub", url)
    order = await _order(pool, make_user, make_product)
    async with pool.acquire() as conn:
        payment = await payments.start_payment(conn, client, order)
        await payments.start_payment(conn, client, order)
    assert payment.payment_intent_id == "pi_fake123"
    key = f"pawhub-order-payment-{order.id}"
    assert [header for header, _ in fake.requests] == [key, key]
    assert fake.requests[1][1] == {
        "amount": "1400",
        "currency": "eur",
        "metadata[order_id]": str(order.id),
    }
