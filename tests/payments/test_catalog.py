"""Stock, reservations and the prescription rule, on the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest

from domain.clinical.pets import NewPet, create_pet
from domain.commerce import orders, stock
from domain.commerce.orders import NewOrder, OrderItem
from domain.commerce.stock import NewReservation
from domain.errors import Invalid, NotFound
from domain.identity import Role
from tests.payments.conftest import MakeProduct, stock_of
from tests.rest.conftest import MakeUser


async def test_stock_can_never_go_negative(pool: asyncpg.Pool, make_product: MakeProduct) -> None:
    product = await make_product(stock=1)
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute(
            "UPDATE stock SET quantity = quantity - 2 WHERE variant_id = $1", product.variants[0].id
        )
    assert await stock_of(pool, product) == 1


async def test_reservations_hold_stock_for_15_minutes_then_go_back(
    pool: asyncpg.Pool, make_user: MakeUser, make_product: MakeProduct
) -> None:
    user, _ = await make_user(Role.owner)
    product = await make_product(stock=5)
    variant_id = product.variants[0].id
    async with pool.acquire() as conn:
        expiring = await stock.reserve(
            conn, user.id, NewReservation(variant_id=variant_id, quantity=2)
        )
        kept = await stock.reserve(conn, user.id, NewReservation(variant_id=variant_id, quantity=1))
    assert await stock_of(pool, product) == 2
    assert timedelta(minutes=14) < expiring.expires_at - datetime.now(UTC) <= timedelta(minutes=15)
    # Fifteen minutes pass for one of them.
    await pool.execute(
        "UPDATE reservations SET expires_at = now() - interval '1 second' WHERE id = $1",
        expiring.id,
    )
    async with pool.acquire() as conn:
        await stock.release_expired_reservations(conn)
        assert await stock.release_expired_reservations(conn) == 0
        remaining = await stock.list_reservations(conn, user.id)
    assert [reservation.id for reservation in remaining] == [kept.id]
    assert await stock_of(pool, product) == 4


async def _pet(pool: asyncpg.Pool, owner_id: UUID) -> UUID:
    pet = await create_pet(pool, owner_id, NewPet(name="Rex", species="dog"))
    return pet.id


async def _prescribe(
    pool: asyncpg.Pool, pet_id: UUID, vet_id: UUID, drug: str, days: int, age_days: int = 0
) -> None:
    await pool.execute(
        "INSERT INTO ehr_records (pet_id, kind, data, author_id, content_sha256, created_at) "
        "VALUES ($1, 'prescription', $2::jsonb, $3, 'test', now() - make_interval(days => $4))",
        pet_id,
        f'{{"drug": "{drug}", "dose": "1 tab", "route": "oral", "frequency": "daily", '
        f'"duration_days": {days}}}',
        vet_id,
        age_days,
    )


async def test_prescription_only_products_need_an_active_prescription_for_the_pet(
    pool: asyncpg.Pool, make_user: MakeUser, make_product: MakeProduct
) -> None:
    owner, _ = await make_user(Role.owner)
    other, _ = await make_user(Role.owner)
    vet, _ = await make_user(Role.vet)
    product = await make_product(stock=10, prescription_drug="Carprofen", kind="medication")
    assert product.prescription_only
    item = [OrderItem(variant_id=product.variants[0].id, quantity=1)]
    pet_id = await _pet(pool, owner.id)

    async def order(buyer: UUID, pet: UUID | None) -> orders.Order:
        async with pool.acquire() as conn:
            return await orders.create_order(conn, buyer, NewOrder(items=item, pet_id=pet))

    with pytest.raises(Invalid, match="need a pet_id"):
        await order(owner.id, None)
    with pytest.raises(Invalid, match="no active prescription for Carprofen"):
        await order(owner.id, pet_id)
    await _prescribe(pool, pet_id, vet.id, "carprofen", days=30, age_days=40)  # expired
    with pytest.raises(Invalid):
        await order(owner.id, pet_id)
    await _prescribe(pool, pet_id, vet.id, "Amoxicillin", days=30)  # another drug
    with pytest.raises(Invalid):
        await order(owner.id, pet_id)
    assert await stock_of(pool, product) == 10

    await _prescribe(pool, pet_id, vet.id, "carprofen", days=30, age_days=10)
    with pytest.raises(NotFound):
        await order(other.id, pet_id)  # not their pet
    placed = await order(owner.id, pet_id)
    assert placed.pet_id == pet_id
    assert await stock_of(pool, product) == 9


async def test_products_without_prescription_need_no_pet(
    pool: asyncpg.Pool, make_user: MakeUser, make_product: MakeProduct
) -> None:
    owner, _ = await make_user(Role.owner)
    product = await make_product(stock=1, price_minor=250)
    async with pool.acquire() as conn:
        placed = await orders.create_order(
            conn,
            owner.id,
            NewOrder(items=[OrderItem(variant_id=product.variants[0].id, quantity=1)]),
        )
    assert (placed.status, placed.total_minor, placed.currency) == ("pending_payment", 250, "eur")
