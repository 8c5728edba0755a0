"""Orders: a state machine whose transitions are plain functions, stock allocated at creation
(under row locks, never oversold) and given back when an order is cancelled or refunded."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from domain import outbox
from domain.commerce import catalog, stock
from domain.commerce.catalog import Quantity
from domain.db import Conn, Db
from domain.errors import Conflict, Invalid, NotFound


class OrderStatus(StrEnum):
    pending_payment = "pending_payment"
    paid = "paid"
    fulfilled = "fulfilled"
    delivered = "delivered"
    cancelled = "cancelled"
    refunded = "refunded"
    partially_refunded = "partially_refunded"


MAX_TOTAL_MINOR = 2**31 - 1  # the column is an integer
_REFUNDS = {OrderStatus.refunded, OrderStatus.partially_refunded}
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.pending_payment: frozenset({OrderStatus.paid, OrderStatus.cancelled}),
    OrderStatus.paid: frozenset({OrderStatus.fulfilled, *_REFUNDS}),
    OrderStatus.fulfilled: frozenset({OrderStatus.delivered, *_REFUNDS}),
    OrderStatus.delivered: frozenset(_REFUNDS),
    OrderStatus.partially_refunded: frozenset(_REFUNDS),
    OrderStatus.cancelled: frozenset(),
    OrderStatus.refunded: frozenset(),
}


class IllegalTransition(Conflict):
    """The order's current status does not allow the requested change."""


def may_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    """The new status, or IllegalTransition."""
    if not may_transition(current, target):
        raise IllegalTransition(f"an order that is {current} cannot become {target}")
    return target


def restocks(current: OrderStatus, target: OrderStatus) -> bool:
    """Whether moving from `current` to `target` gives the order's units back to stock."""
    return target in (OrderStatus.cancelled, OrderStatus.refunded) and current != target


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant_id: UUID
    quantity: Quantity


class NewOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[OrderItem] = Field(min_length=1, max_length=50)
    pet_id: UUID | None = None


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    variant_id: UUID
    quantity: int
    unit_price_minor: int


class Order(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    buyer_id: UUID
    pet_id: UUID | None
    # The vet selling the order's products (paid through Connect), or None: the platform.
    vet_id: UUID | None
    status: OrderStatus
    total_minor: int
    currency: str
    payment_intent_id: str | None
    lines: list[OrderLine]
    created_at: datetime
    updated_at: datetime


_ORDER_COLUMNS = (
    "id, buyer_id, pet_id, vet_id, status, total_minor, currency, payment_intent_id, "
    "created_at, updated_at"
)


async def _order(conn: Db, row: object) -> Order:
    values = dict(row)  # type: ignore[call-overload]
    lines = await conn.fetch(
        "SELECT variant_id, quantity, unit_price_minor FROM order_lines WHERE order_id = $1 "
        "ORDER BY variant_id",
        values["id"],
    )
    return Order(**values, lines=[OrderLine(**dict(line)) for line in lines])


async def create_order(conn: Conn, buyer_id: UUID, new: NewOrder) -> Order:
    """Allocate the items (the buyer's own reservations of them count as available) and open
    an order awaiting payment."""
    wanted: dict[UUID, int] = {}
    for item in new.items:
        wanted[item.variant_id] = wanted.get(item.variant_id, 0) + item.quantity
    async with conn.transaction():
        prices = await conn.fetch(
            "SELECT v.id, v.price_minor, v.currency, p.vet_id FROM product_variants v "
            "JOIN products p ON p.id = v.product_id WHERE v.id = ANY($1::uuid[])",
            list(wanted),
        )
        if len(prices) != len(wanted):
            raise NotFound("no such product variant")
        currencies = {row["currency"] for row in prices}
        if len(currencies) != 1:
            raise Invalid("an order's items must share one currency")
        sellers = {row["vet_id"] for row in prices}
        if len(sellers) != 1:
            raise Invalid("an order's items must come from one seller")
        await catalog.check_prescriptions(conn, buyer_id, new.pet_id, list(wanted))
        await stock.release_reservations(conn, buyer_id, sorted(wanted))
        await stock.take_stock(conn, wanted)
        total = sum(row["price_minor"] * wanted[row["id"]] for row in prices)
        if total > MAX_TOTAL_MINOR:
            raise Invalid("an order's total is too large; split it")
        row = await conn.fetchrow(
            "INSERT INTO orders (buyer_id, pet_id, vet_id, status, total_minor, currency) "
            f"VALUES ($1, $2, $3, 'pending_payment', $4, $5) RETURNING {_ORDER_COLUMNS}",
            buyer_id,
            new.pet_id,
            sellers.pop(),
            total,
            currencies.pop(),
        )
        assert row is not None
        await conn.executemany(
            "INSERT INTO order_lines (order_id, variant_id, quantity, unit_price_minor) "
            "VALUES ($1, $2, $3, $4)",
            [
                (row["id"], price["id"], wanted[price["id"]], price["price_minor"])
                for price in prices
            ],
        )
        return await _order(conn, row)


async def get_order(conn: Db, buyer_id: UUID, order_id: UUID) -> Order:
    """The buyer's own order; anyone else's is NotFound."""
    row = await conn.fetchrow(
        f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = $1 AND buyer_id = $2", order_id, buyer_id
    )
    if row is None:
        raise NotFound("no such order")
    return await _order(conn, row)


async def lock_order(conn: Conn, order_id: UUID) -> Order:
    """The order, locked for update until the caller's transaction ends."""
    return await find_order(conn, order_id, lock=True)


async def find_order(conn: Db, order_id: UUID, *, lock: bool = False) -> Order:
    """Any buyer's order (for jobs and webhooks, never for a caller's request)."""
    row = await conn.fetchrow(
        f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        order_id,
    )
    if row is None:
        raise NotFound("no such order")
    return await _order(conn, row)


async def move(conn: Conn, order: Order, target: OrderStatus) -> Order:
    """Apply one transition to a locked order: restock when it ends the sale, and announce a
    payment in the outbox, all in the caller's transaction."""
    transition(order.status, target)
    row = await conn.fetchrow(
        "UPDATE orders SET status = $2, updated_at = now() WHERE id = $1 "
        f"RETURNING {_ORDER_COLUMNS}",
        order.id,
        target,
    )
    if restocks(order.status, target):
        await stock.put_back_stock(conn, [(line.variant_id, line.quantity) for line in order.lines])
    if target is OrderStatus.paid:
        await outbox.append(
            conn,
            "order.paid",
            {
                "order_id": str(order.id),
                "buyer_id": str(order.buyer_id),
                "total_minor": order.total_minor,
                "currency": order.currency,
            },
        )
    return await _order(conn, row)


async def set_payment_intent(
    conn: Conn, order_id: UUID, payment_intent_id: str, client_secret: str
) -> None:
    await conn.execute(
        "UPDATE orders SET payment_intent_id = $2, client_secret = $3, updated_at = now() "
        "WHERE id = $1",
        order_id,
        payment_intent_id,
        client_secret,
    )


async def unpaid_since(conn: Db, deadline: timedelta, limit: int) -> list[UUID]:
    """Orders still awaiting payment `deadline` after they were placed, oldest first."""
    rows = await conn.fetch(
        "SELECT id FROM orders WHERE status = 'pending_payment' "
        "AND created_at < now() - $1::interval ORDER BY created_at LIMIT $2",
        deadline,
        limit,
    )
    return [row["id"] for row in rows]


async def order_for_payment_intent(conn: Db, payment_intent_id: str) -> UUID | None:
    order_id: UUID | None = await conn.fetchval(
        "SELECT id FROM orders WHERE payment_intent_id = $1", payment_intent_id
    )
    return order_id
