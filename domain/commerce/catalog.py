"""The catalog (products with variants, prices in minor units, each variant's stock row opened
with it) and the prescription rule; stock and reservations: `domain.commerce.stock`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from asyncpg import Record, UniqueViolationError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from domain.db import Conn, Db
from domain.errors import Conflict, Invalid, NotFound
from domain.fields import LongText, ShortText
from domain.identity import Role

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


async def get_product(conn: Db, product_id: UUID) -> Product:
    row = await conn.fetchrow(f"{_PRODUCT_SELECT} WHERE p.id = $1", product_id)
    if row is None:
        raise NotFound("no such product")
    return _product(row)


async def list_products(conn: Db) -> list[Product]:
    rows = await conn.fetch(f"{_PRODUCT_SELECT} ORDER BY p.name, p.id")
    return [_product(row) for row in rows]


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
