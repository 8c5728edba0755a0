"""The outbox relay to Redis, and 20 buyers racing for the last 5 units."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import stripe
from redis.asyncio import Redis

from domain import outbox
from domain.identity import Role
from pawhub.settings import Settings
from tests.payments.conftest import MakeProduct, deliver, pay, stock_of, stripe_event
from tests.rest.conftest import MakeUser, bearer


async def test_relay_publishes_unsent_events_once_and_marks_them_sent(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    redis = Redis.from_url(settings.redis_url or "")
    channel = outbox.events_channel(settings.redis_namespace)
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=5)  # the subscription's confirmation
    ours = [f"{uuid4().hex}-1", f"{uuid4().hex}-2"]
    routed: list[tuple[str, str]] = []

    async def route(topic: str, payload: dict[str, Any]) -> None:
        if payload.get("order_id") in ours:
            routed.append((topic, payload["order_id"]))

    # Appended and relayed in one transaction: no other relay (the API's periodic job) sees them.
    async with pool.acquire() as conn, conn.transaction():
        for order_id in ours:
            await outbox.append(conn, "order.paid", {"order_id": order_id})
        assert await outbox.relay(conn, redis, channel, route) >= 2
        await outbox.relay(conn, redis, channel, route)  # a second pass relays none again
    assert routed == [("order.paid", ours[0]), ("order.paid", ours[1])]
    received: list[dict[str, Any]] = []
    while message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=2):
        event = json.loads(message["data"])
        if event["payload"].get("order_id") in ours:
            received.append(event)
    assert [(m["topic"], m["payload"]["order_id"]) for m in received] == [
        ("order.paid", ours[0]),
        ("order.paid", ours[1]),
    ]
    unsent = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND payload->>'order_id' = ANY($1)", ours
    )
    assert unsent == 0
    await pubsub.aclose()
    await redis.aclose()


async def test_twenty_buyers_race_for_the_last_five_units(
    api: httpx.AsyncClient,
    make_user: MakeUser,
    make_product: MakeProduct,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
) -> None:
    product = await make_product(stock=5)
    variant_id = str(product.variants[0].id)
    buyers = [await make_user(Role.owner) for _ in range(20)]

    async def buy(token: str) -> httpx.Response:
        return await api.post(
            "/v1/orders",
            json={"items": [{"variant_id": variant_id, "quantity": 1}]},
            headers=bearer(token),
        )

    answers = await asyncio.gather(*(buy(token) for _, token in buyers))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * 5 + [409] * 15
    assert await stock_of(pool, product) == 0

    won = [answer.json() for answer in answers if answer.status_code == 201]
    for created in won:
        intent = await pay(stripe_api, created["payment_intent_id"])
        assert (
            await deliver(api, stripe_event("payment_intent.succeeded", {"id": intent.id}))
        ).status_code == 200
    paid = await pool.fetchval(
        "SELECT count(*) FROM orders o JOIN order_lines l ON l.order_id = o.id "
        "WHERE l.variant_id = $1 AND o.status = 'paid'",
        product.variants[0].id,
    )
    assert paid == 5
    assert await stock_of(pool, product) == 0
