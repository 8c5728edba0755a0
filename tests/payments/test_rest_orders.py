"""Products, cart reservations and orders over the live API, paid through localstripe."""

from __future__ import annotations

import asyncpg
import httpx
import stripe

from domain.identity import Role
from tests.payments.conftest import MakeProduct, deliver, pay, place_order, stock_of, stripe_event
from tests.rest.conftest import MakeUser, bearer


async def test_products_list_and_detail(
    api: httpx.AsyncClient, make_user: MakeUser, make_product: MakeProduct
) -> None:
    _, token = await make_user(Role.owner)
    product = await make_product(stock=3, price_minor=450)
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
    api: httpx.AsyncClient,
    make_user: MakeUser,
    make_product: MakeProduct,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
) -> None:
    _, token = await make_user(Role.owner)
    _, stranger = await make_user(Role.owner)
    product = await make_product(stock=4, price_minor=1000)
    body = await place_order(api, token, product.variants[0].id, 3)
    order = body["order"]
    assert order["status"] == "pending_payment"
    assert order["total_minor"] == 3000
    assert body["client_secret"].startswith(body["payment_intent_id"])
    assert await stock_of(pool, product) == 1

    intent = await pay(stripe_api, body["payment_intent_id"])
    assert intent.status == "succeeded"
    delivered = await deliver(api, stripe_event("payment_intent.succeeded", {"id": intent.id}))
    assert delivered.status_code == 200, delivered.text

    mine = await api.get(f"/v1/orders/{order['id']}", headers=bearer(token))
    assert mine.json()["status"] == "paid"
    theirs = await api.get(f"/v1/orders/{order['id']}", headers=bearer(stranger))
    assert theirs.status_code == 404

    cancel = await api.post(f"/v1/orders/{order['id']}/cancel", headers=bearer(token))
    assert cancel.status_code == 409
    assert cancel.json()["status"] == 409


async def test_cancel_gives_stock_back_and_cancels_the_payment_intent(
    api: httpx.AsyncClient,
    make_user: MakeUser,
    make_product: MakeProduct,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
) -> None:
    _, token = await make_user(Role.owner)
    product = await make_product(stock=2)
    created = await place_order(api, token, product.variants[0].id, 2)
    assert await stock_of(pool, product) == 0
    order_id = created["order"]["id"]
    cancelled = await api.post(f"/v1/orders/{order_id}/cancel", headers=bearer(token))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert await stock_of(pool, product) == 2
    intent = await stripe_api.v1.payment_intents.retrieve_async(created["payment_intent_id"])
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
