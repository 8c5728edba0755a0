"""Admins create products and variants and set or adjust stock over the live API; everyone else
is refused (403), bad input is a problem+json 400/422, a taken sku or negative stock 409."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

from domain.identity import Role
from tests.payments.conftest import MakeProduct, stock_of
from tests.rest.conftest import MakeUser, bearer


def _variant(**overrides: Any) -> dict[str, Any]:
    return {"sku": uuid4().hex, "name": "1 kg", "price_minor": 999, "currency": "eur", **overrides}


def _problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


async def test_an_admin_builds_a_product_with_variants_and_stock(
    api: httpx.AsyncClient, make_user: MakeUser
) -> None:
    _, admin = await make_user(Role.admin)
    created = await api.post(
        "/v1/admin/products",
        json={"name": "Kibble", "kind": "food", "variants": [_variant(stock=4)]},
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    product = created.json()
    assert (product["vet_id"], product["variants"][0]["in_stock"]) == (None, 4)

    sku = uuid4().hex
    added = await api.post(
        f"/v1/admin/products/{product['id']}/variants",
        json=_variant(sku=sku, price_minor=1500),
        headers=bearer(admin),
    )
    assert added.status_code == 201, added.text
    variants = {v["sku"]: v for v in added.json()["variants"]}
    assert variants[sku]["in_stock"] == 0
    variant_id = variants[sku]["id"]

    counted = await api.put(
        f"/v1/admin/variants/{variant_id}/stock", json={"quantity": 7}, headers=bearer(admin)
    )
    assert counted.json() == {"variant_id": variant_id, "quantity": 7}
    adjusted = await api.post(
        f"/v1/admin/variants/{variant_id}/stock/adjustments",
        json={"delta": -5},
        headers=bearer(admin),
    )
    assert adjusted.status_code == 200, adjusted.text
    assert adjusted.json()["quantity"] == 2
    _problem(
        await api.post(
            f"/v1/admin/variants/{variant_id}/stock/adjustments",
            json={"delta": -3},
            headers=bearer(admin),
        ),
        409,
    )
    _problem(
        await api.post(
            f"/v1/admin/products/{product['id']}/variants",
            json=_variant(sku=sku),
            headers=bearer(admin),
        ),
        409,
    )
    listed = await api.get(f"/v1/products/{product['id']}", headers=bearer(admin))
    assert {v["sku"]: v["in_stock"] for v in listed.json()["variants"]}[sku] == 2


async def test_a_vets_product_names_the_vet(api: httpx.AsyncClient, make_user: MakeUser) -> None:
    _, admin = await make_user(Role.admin)
    vet, _ = await make_user(Role.vet)
    owner, _ = await make_user(Role.owner)
    body = {"name": "Ear drops", "kind": "medication", "variants": [_variant()]}
    made = await api.post(
        "/v1/admin/products", json={**body, "vet_id": str(vet.id)}, headers=bearer(admin)
    )
    assert made.status_code == 201, made.text
    assert made.json()["vet_id"] == str(vet.id)
    not_a_vet = await api.post(
        "/v1/admin/products", json={**body, "vet_id": str(owner.id)}, headers=bearer(admin)
    )
    _problem(not_a_vet, 422)


@pytest.mark.parametrize("role", [Role.owner, Role.vet, Role.moderator])
async def test_only_admins_manage_the_catalog(
    api: httpx.AsyncClient, make_user: MakeUser, make_product: MakeProduct, role: Role
) -> None:
    _, token = await make_user(role)
    product = await make_product(stock=1)
    variant = product.variants[0].id
    auth = bearer(token)
    attempts = [
        api.post(
            "/v1/admin/products",
            json={"name": "X", "kind": "food", "variants": [_variant()]},
            headers=bearer(token),
        ),
        api.post(
            f"/v1/admin/products/{product.id}/variants", json=_variant(), headers=bearer(token)
        ),
        api.put(f"/v1/admin/variants/{variant}/stock", json={"quantity": 9}, headers=auth),
        api.post(
            f"/v1/admin/variants/{variant}/stock/adjustments",
            json={"delta": 9},
            headers=bearer(token),
        ),
    ]
    for attempt in attempts:
        _problem(await attempt, 403)
    unauthenticated = await api.put(f"/v1/admin/variants/{variant}/stock", json={"quantity": 9})
    _problem(unauthenticated, 401)


async def test_bad_input_is_a_problem(
    api: httpx.AsyncClient, make_user: MakeUser, make_product: MakeProduct, pool: asyncpg.Pool
) -> None:
    _, admin = await make_user(Role.admin)
    product = await make_product(stock=1)
    variant = product.variants[0].id
    for body in (
        {"name": "", "kind": "food", "variants": [_variant()]},
        {"name": "X", "kind": "toys", "variants": [_variant()]},
        {"name": "X", "kind": "food", "variants": []},
        {"name": "X", "kind": "food", "variants": [_variant(price_minor=0)]},
        {"name": "X", "kind": "food", "variants": [_variant(currency="EURO")]},
        {"name": "X", "kind": "food", "variants": [_variant()], "surprise": 1},
    ):
        _problem(await api.post("/v1/admin/products", json=body, headers=bearer(admin)), 400)
    _problem(
        await api.put(
            f"/v1/admin/variants/{variant}/stock", json={"quantity": -1}, headers=bearer(admin)
        ),
        400,
    )
    _problem(
        await api.put(
            f"/v1/admin/variants/{uuid4()}/stock", json={"quantity": 1}, headers=bearer(admin)
        ),
        404,
    )
    _problem(
        await api.post(
            f"/v1/admin/products/{uuid4()}/variants", json=_variant(), headers=bearer(admin)
        ),
        404,
    )
    assert await stock_of(pool, product) == 1
