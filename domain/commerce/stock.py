"""Stock that never goes negative (admins count it in, orders take it out, cancellations give it
back, all under row locks taken in one order) and cart reservations that hold it for 15 minutes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from asyncpg import CheckViolationError, NumericValueOutOfRangeError
from pydantic import BaseModel, ConfigDict, Field

from domain.commerce.catalog import MAX_STOCK, Quantity
from domain.db import Conn, Db
from domain.errors import Conflict, NotFound

RESERVATION_TTL = timedelta(minutes=15)


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
