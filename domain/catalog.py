"""The catalog (products with variants, prices in minor units), stock that never goes negative,
cart reservations that hold stock for 15 minutes, and the prescription rule."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from asyncpg import (
    CheckViolationError,
    NumericValueOutOfRangeError,
    Record,
    UniqueViolationError,
)
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from domain.db import Conn, Db
from domain.errors import Conflict, Invalid, NotFound
from domain.fields import LongText, ShortText
from domain.identity import Role

RESERVATION_TTL = timedelta(minutes=15)
MAX_PRICE_MINOR = 10_000_000
MAX_STOCK = 1_000_000
Currency = Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$")]
Quantity = Annotated[int, Field(ge=1, le=1000)]


class ProductKind(StrEnum):
    food = "food"
    medication = "medication"
    accessory = "accessory"


class NewVariant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: ShortText
    name: ShortText
    price_minor: int = Field(gt=0, le=MAX_PRICE_MINOR)
    currency: Currency
    stock: int = Field(default=0, ge=0, le=MAX_STOCK)


class NewProduct(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ShortText
    kind: ProductKind
    description: LongText = ""
    prescription_drug: ShortText | None = None
    # The vet selling it (paid through Connect); None: the platform sells it.
    vet_id: UUID | None = None
    variants: list[NewVariant] = Field(min_length=1, max_length=50)


class Variant(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    sku: str
    name: str
    price_minor: int
    currency: str
    in_stock: int


class Product(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str
    kind: ProductKind
    description: str
    prescription_only: bool
    prescription_drug: str | None
    vet_id: UUID | None = None
    variants: list[Variant]


class Reservation(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    variant_id: UUID
    quantity: int
    expires_at: datetime


class NewReservation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant_id: UUID
    quantity: Quantity


_PRODUCT_SELECT = """
SELECT p.id, p.name, p.kind, p.description, p.prescription_drug, p.vet_id,
       p.prescription_drug IS NOT NULL AS prescription_only,
       COALESCE((SELECT json_agg(json_build_object(
                     'id', v.id, 'sku', v.sku, 'name', v.name, 'price_minor', v.price_minor,
                     'currency', v.currency, 'in_stock', COALESCE(s.quantity, 0))
                     ORDER BY v.price_minor, v.id)
                   FROM product_variants v LEFT JOIN stock s ON s.variant_id = v.id
                  WHERE v.product_id = p.id), '[]'::json)::text AS variants
  FROM products p"""


def _product(row: Record) -> Product:
    values = dict(row)
    variants = TypeAdapter(list[Variant]).validate_json(values.pop("variants"))
    return Product(**values, variants=variants)


class StockLevel(BaseModel):
    model_config = ConfigDict(frozen=True)

    variant_id: UUID
    quantity: int


class SetStock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int = Field(ge=0, le=MAX_STOCK)


class AdjustStock(BaseModel):
    """A delivery (positive) or a write-off (negative); stock never goes below zero."""

    model_config = ConfigDict(extra="forbid")

    delta: int = Field(ge=-MAX_STOCK, le=MAX_STOCK)


def may_manage_catalog(role: Role) -> bool:
    return role is Role.admin


async def create_product(conn: Conn, new: NewProduct) -> Product:
    """A product with its variants and their opening stock (Conflict on a taken sku)."""
    async with conn.transaction():
        if new.vet_id is not None:
            is_vet = await conn.fetchval("SELECT role = 'vet' FROM users WHERE id = $1", new.vet_id)
            if not is_vet:
                raise Invalid("vet_id names no vet")
        product_id: UUID = await conn.fetchval(
            "INSERT INTO products (name, kind, description, prescription_drug, vet_id) "
            "VALUES ($1, $2, $3, $4, $5) RETURNING id",
            new.name,
            new.kind,
            new.description,
            new.prescription_drug,
            new.vet_id,
        )
        for variant in new.variants:
            await _insert_variant(conn, product_id, variant)
    return await get_product(conn, product_id)


async def add_variant(conn: Conn, product_id: UUID, variant: NewVariant) -> Product:
    async with conn.transaction():
        if not await conn.fetchval("SELECT true FROM products WHERE id = $1", product_id):
            raise NotFound("no such product")
        await _insert_variant(conn, product_id, variant)
    return await get_product(conn, product_id)


async def _insert_variant(conn: Conn, product_id: UUID, variant: NewVariant) -> None:
    try:
        await conn.execute(
            "WITH v AS (INSERT INTO product_variants "
            "(product_id, sku, name, price_minor, currency) "
            "VALUES ($1, $2, $3, $4, $5) RETURNING id) "
            "INSERT INTO stock (variant_id, quantity) SELECT id, $6 FROM v",
            product_id,
            variant.sku,
            variant.name,
            variant.price_minor,
            variant.currency,
            variant.stock,
        )
    except UniqueViolationError as exc:
        raise Conflict(f"a variant with sku {variant.sku!r} exists") from exc


async def set_stock(conn: Db, variant_id: UUID, quantity: int) -> StockLevel:
    """Set a variant's stock to a counted quantity (units reserved or ordered stay out)."""
    row = await conn.fetchrow(
        "UPDATE stock SET quantity = $2 WHERE variant_id = $1 RETURNING variant_id, quantity",
        variant_id,
        quantity,
    )
    if row is None:
        raise NotFound("no such product variant")
    return StockLevel(**dict(row))


async def adjust_stock(conn: Db, variant_id: UUID, delta: int) -> StockLevel:
    """Add `delta` units under the row's lock; Conflict when it would go below zero."""
    try:
        row = await conn.fetchrow(
            "UPDATE stock SET quantity = quantity + $2 WHERE variant_id = $1 "
            "RETURNING variant_id, quantity",
            variant_id,
            delta,
        )
    except CheckViolationError as exc:
        raise Conflict("not enough stock to take that many away") from exc
    except NumericValueOutOfRangeError as exc:
        raise Conflict("that much stock does not fit") from exc
    if row is None:
        raise NotFound("no such product variant")
    return StockLevel(**dict(row))


async def get_product(conn: Db, product_id: UUID) -> Product:
    row = await conn.fetchrow(f"{_PRODUCT_SELECT} WHERE p.id = $1", product_id)
    if row is None:
        raise NotFound("no such product")
    return _product(row)


async def list_products(conn: Db) -> list[Product]:
    rows = await conn.fetch(f"{_PRODUCT_SELECT} ORDER BY p.name, p.id")
    return [_product(row) for row in rows]


async def take_stock(conn: Conn, wanted: dict[UUID, int]) -> None:
    """Take `wanted` units per variant out of stock, all or nothing (Conflict when short).

    The stock rows are locked in variant-id order, so concurrent buyers never deadlock, and
    each sees the quantity its predecessors left: nothing is ever oversold."""
    rows = await conn.fetch(
        "SELECT variant_id, quantity FROM stock WHERE variant_id = ANY($1::uuid[]) "
        "ORDER BY variant_id FOR UPDATE",
        list(wanted),
    )
    available = {row["variant_id"]: row["quantity"] for row in rows}
    for variant_id, quantity in sorted(wanted.items()):
        if variant_id not in available:
            raise NotFound("no such product variant")
        if available[variant_id] < quantity:
            raise Conflict("not enough stock")
    await conn.execute(
        "UPDATE stock SET quantity = stock.quantity - w.quantity "
        "FROM unnest($1::uuid[], $2::int[]) AS w (variant_id, quantity) "
        "WHERE stock.variant_id = w.variant_id",
        list(wanted),
        list(wanted.values()),
    )


async def put_back_stock(conn: Conn, returned: Iterable[tuple[UUID, int]]) -> None:
    """Return units to stock (a cancelled order, a refund, an expired reservation)."""
    merged: dict[UUID, int] = {}
    for variant_id, quantity in returned:
        merged[variant_id] = merged.get(variant_id, 0) + quantity
    if not merged:
        return
    # The same lock order as take_stock, so giving back never deadlocks with taking.
    await conn.execute(
        "SELECT 1 FROM stock WHERE variant_id = ANY($1::uuid[]) ORDER BY variant_id FOR UPDATE",
        sorted(merged),
    )
    await conn.execute(
        "UPDATE stock SET quantity = stock.quantity + r.quantity "
        "FROM unnest($1::uuid[], $2::int[]) AS r (variant_id, quantity) "
        "WHERE stock.variant_id = r.variant_id",
        sorted(merged),
        [merged[variant_id] for variant_id in sorted(merged)],
    )


async def reserve(conn: Conn, user_id: UUID, new: NewReservation) -> Reservation:
    """Hold stock for the caller's cart for RESERVATION_TTL."""
    async with conn.transaction():
        await take_stock(conn, {new.variant_id: new.quantity})
        row = await conn.fetchrow(
            "INSERT INTO reservations (user_id, variant_id, quantity, expires_at) "
            "VALUES ($1, $2, $3, now() + $4::interval) "
            "RETURNING id, variant_id, quantity, expires_at",
            user_id,
            new.variant_id,
            new.quantity,
            RESERVATION_TTL,
        )
    assert row is not None
    return Reservation(**dict(row))


async def list_reservations(conn: Db, user_id: UUID) -> list[Reservation]:
    rows = await conn.fetch(
        "SELECT id, variant_id, quantity, expires_at FROM reservations "
        "WHERE user_id = $1 AND expires_at > now() ORDER BY expires_at, id",
        user_id,
    )
    return [Reservation(**dict(row)) for row in rows]


async def release_reservations(conn: Conn, user_id: UUID, variant_ids: list[UUID]) -> None:
    """Give the caller's reservations of these variants back to stock (an order takes them)."""
    rows = await conn.fetch(
        "DELETE FROM reservations WHERE user_id = $1 AND variant_id = ANY($2::uuid[]) "
        "RETURNING variant_id, quantity",
        user_id,
        variant_ids,
    )
    await put_back_stock(conn, [(row["variant_id"], row["quantity"]) for row in rows])


async def release_expired_reservations(conn: Conn) -> int:
    """Return every expired reservation's units to stock; the number of reservations released."""
    async with conn.transaction():
        rows = await conn.fetch(
            "DELETE FROM reservations WHERE id IN (SELECT id FROM reservations "
            "WHERE expires_at <= now() FOR UPDATE SKIP LOCKED) RETURNING variant_id, quantity"
        )
        await put_back_stock(conn, [(row["variant_id"], row["quantity"]) for row in rows])
    return len(rows)


async def check_prescriptions(
    conn: Conn, buyer_id: UUID, pet_id: UUID | None, variant_ids: list[UUID]
) -> None:
    """Prescription-only products go only to a pet of the buyer's with an active prescription
    (its latest amendment, else the record as signed, within duration_days) for their drug."""
    drugs: list[str] = [
        row["prescription_drug"]
        for row in await conn.fetch(
            "SELECT DISTINCT p.prescription_drug FROM products p "
            "JOIN product_variants v ON v.product_id = p.id "
            "WHERE v.id = ANY($1::uuid[]) AND p.prescription_drug IS NOT NULL",
            variant_ids,
        )
    ]
    if not drugs:
        return
    if pet_id is None:
        raise Invalid("prescription-only products need a pet_id")
    owned = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pets WHERE id = $1 AND owner_id = $2)", pet_id, buyer_id
    )
    if not owned:
        raise NotFound("no such pet")
    prescribed = {
        row["drug"]
        for row in await conn.fetch(
            "SELECT lower(d.data->>'drug') AS drug FROM ehr_records r "
            "CROSS JOIN LATERAL (SELECT COALESCE((SELECT a.data FROM ehr_amendments a "
            "    WHERE a.record_id = r.id ORDER BY a.created_at DESC, a.id DESC LIMIT 1), "
            "    r.data) AS data) d "
            "WHERE r.pet_id = $1 AND r.kind = 'prescription' "
            "AND r.created_at + make_interval(days => (d.data->>'duration_days')::int) > now()",
            pet_id,
        )
    }
    missing = sorted(drug for drug in drugs if drug.lower() not in prescribed)
    if missing:
        raise Invalid(f"the pet has no active prescription for {', '.join(missing)}")
