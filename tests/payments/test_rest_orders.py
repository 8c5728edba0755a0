"""Products, cart reservations and orders over the live API, paid through localstripe."""

from __future__ import annotations

import asyncpg
import httpx

from domain.identity import Role
from tests.payments.conftest import (
    MakeProduct,
    Shop,
    deliver,
    pay,
    place_order,
    stock_of,
    stripe_event,
)
from tests.rest.conftest import MakeUser, bearer


async def test_products_list_and_detail(shop: Shop) -> None:
    api, token = shop.api, shop.token
    product = await shop.make_product(stock=3, price_minor=450)
    listed = await api.get("/v1/products", headers=bearer(token))
    assert listed.status_code == 200
    assert str(product.id) in {item["id"] for item in listed.json()}
    detail = await api.get(f"/v1/products/{product.id}", headers=bearer(token))
    assert detail.status_code == 200
    variant = detail.json()["variants"][0]
    assert (variant["price_minor"], variant["currency"], variant["in_stock"]) == (450, "eur", 3)
    missing = await api.get(
        "/v1/products/00000000-0000-0000-0000-000000000000", headers=bearer(token)
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_order_is_paid_through_stripe_and_only_its_buyer_sees_it(
    shop: Shop, make_user: MakeUser
) -> None:
    _, stranger = await make_user(Role.owner)
    placed = await shop.order(stock=4, quantity=3, price_minor=1000)
    assert placed.order["status"] == "pending_payment"
    assert placed.order["total_minor"] == 3000
    assert placed.client_secret.startswith(placed.payment_intent_id)
    assert await shop.stock(placed) == 1

    intent = await pay(shop.stripe, placed.payment_intent_id)
    assert intent.status == "succeeded"
    succeeded = stripe_event("payment_intent.succeeded", {"id": intent.id})
    delivered = await deliver(shop.api, succeeded)
    assert delivered.status_code == 200, delivered.text

    assert await shop.status(placed) == "paid"
    theirs = await shop.api.get(f"/v1/orders/{placed.id}", headers=bearer(stranger))
    assert theirs.status_code == 404

    cancel = await shop.api.post(f"/v1/orders/{placed.id}/cancel", headers=bearer(shop.token))
    assert cancel.status_code == 409
    assert cancel.json()["status"] == 409


async def test_cancel_gives_stock_back_and_cancels_the_payment_intent(shop: Shop) -> None:
    placed = await shop.order(stock=2, quantity=2)
    assert await shop.stock(placed) == 0
    cancelled = await shop.api.post(f"/v1/orders/{placed.id}/cancel", headers=bearer(shop.token))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert await shop.stock(placed) == 2
    intent = await shop.stripe.v1.payment_intents.retrieve_async(placed.payment_intent_id)
    assert intent.status == "canceled"


async def test_short_stock_is_409_and_reservation_counts_for_its_holder(
    api: httpx.AsyncClient, make_user: MakeUser, make_product: MakeProduct, pool: asyncpg.Pool
) -> None:
    _, holder = await make_user(Role.owner)
    _, other = await make_user(Role.owner)
    product = await make_product(stock=2)
    variant_id = str(product.variants[0].id)
    held = await api.post(
        "/v1/cart/reservations",
        json={"variant_id": variant_id, "quantity": 2},
        headers=bearer(holder),
    )
    assert held.status_code == 201, held.text
    assert await stock_of(pool, product) == 0
    refused = await api.post(
        "/v1/orders",
        json={"items": [{"variant_id": variant_id, "quantity": 1}]},
        headers=bearer(other),
    )
    assert refused.status_code == 409
    listed = await api.get("/v1/cart/reservations", headers=bearer(holder))
    assert [r["id"] for r in listed.json()] == [held.json()["id"]]
    await place_order(api, holder, variant_id, 2)
    assert await stock_of(pool, product) == 0
    assert (await api.get("/v1/cart/reservations", headers=bearer(holder))).json() == []


async def test_openapi_documents_the_routes(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/schema/openapi.json")).json()
    assert "409" in schema["paths"]["/v1/orders"]["post"]["responses"]
    assert "400" in schema["paths"]["/v1/webhooks/stripe"]["post"]["responses"]
