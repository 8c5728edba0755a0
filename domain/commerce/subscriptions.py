"""Wellness-plan subscriptions mirrored from Stripe's webhooks.

Each event is stored by id and applied once. Its snapshot may be stale, so the subscription (and
the invoice, for invoice events) is re-fetched from Stripe under a per-subscription lock and the
mirror row is overwritten with Stripe's current state: duplicates and out-of-order deliveries end
in the state Stripe holds now. Invoice outcomes are kept for the subscription's latest invoice
(by the invoice's `created`), so a late event about an older invoice never hides a newer one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import stripe

from domain.db import Conn, Db

SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)
INVOICE_EVENTS = frozenset({"invoice.paid", "invoice.payment_failed"})
EVENTS = SUBSCRIPTION_EVENTS | INVOICE_EVENTS


@dataclass(frozen=True)
class Subscription:
    id: str
    customer_id: str
    user_id: UUID | None
    pet_id: UUID | None
    status: str
    plan_id: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    last_invoice_id: str | None
    last_invoice_status: str | None


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value is not None else None


def _id(value: Any) -> str | None:
    """An id from a field Stripe sends either as an id or as an expanded object."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return str(value["id"])


def _first_item(sub: dict[str, Any]) -> dict[str, Any]:
    items: list[dict[str, Any]] = (sub.get("items") or {}).get("data") or []
    return items[0] if items else {}


def plan_of(sub: dict[str, Any]) -> str | None:
    """The first item's price id (or, on older API versions and localstripe, its plan id)."""
    item = _first_item(sub)
    return _id(item.get("price")) or _id(item.get("plan")) or _id(sub.get("plan"))


def period_end_of(sub: dict[str, Any]) -> datetime | None:
    """Newer API versions keep the period on the items; older ones on the subscription."""
    return _timestamp(sub.get("current_period_end") or _first_item(sub).get("current_period_end"))


def subscription_of_invoice(invoice: dict[str, Any]) -> str | None:
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    return _id(invoice.get("subscription")) or _id(parent.get("subscription"))


def _uuid_in(metadata: Any, key: str) -> UUID | None:
    raw = (metadata or {}).get(key)
    try:
        return UUID(str(raw)) if raw else None
    except ValueError:
        return None


async def _owner(client: stripe.StripeClient, customer_id: str) -> UUID | None:
    """Our user, when the Stripe customer's metadata names one (`user_id`)."""
    customer = (await client.v1.customers.retrieve_async(customer_id)).to_dict()
    return _uuid_in(customer.get("metadata"), "user_id")


async def _retrieve(client: stripe.StripeClient, sub_id: str) -> dict[str, Any] | None:
    try:
        return (await client.v1.subscriptions.retrieve_async(sub_id)).to_dict()
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise


async def mirror(conn: Conn, client: stripe.StripeClient, sub: dict[str, Any]) -> None:
    """Overwrite our row of the subscription with Stripe's state `sub` (call under
    `lock_subscription`). A wellness plan we created names its pet in the metadata."""
    customer_id = _id(sub.get("customer"))
    assert customer_id is not None
    user_id = await _owner(client, customer_id)
    await conn.execute(
        """INSERT INTO subscriptions
               (id, customer_id, user_id, status, plan_id, current_period_end,
                cancel_at_period_end, pet_id)
           VALUES ($1, $2, (SELECT id FROM users WHERE id = $3), $4, $5, $6, $7,
                   (SELECT id FROM pets WHERE id = $8 AND owner_id = $3))
           ON CONFLICT (id) DO UPDATE SET
               customer_id = EXCLUDED.customer_id,
               user_id = COALESCE(EXCLUDED.user_id, subscriptions.user_id),
               pet_id = COALESCE(EXCLUDED.pet_id, subscriptions.pet_id),
               status = EXCLUDED.status,
               plan_id = EXCLUDED.plan_id,
               current_period_end = EXCLUDED.current_period_end,
               cancel_at_period_end = EXCLUDED.cancel_at_period_end,
               updated_at = now()""",
        sub["id"],
        customer_id,
        user_id,
        str(sub["status"]),
        plan_of(sub),
        period_end_of(sub),
        bool(sub.get("cancel_at_period_end")),
        _uuid_in(sub.get("metadata"), "pet_id"),
    )


async def lock_subscription(conn: Conn, sub_id: str) -> None:
    """Serialise writes of one subscription's row until the caller's transaction ends."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"stripe-sub:{sub_id}"
    )


async def _record_invoice(
    conn: Conn, client: stripe.StripeClient, sub_id: str, event: dict[str, Any]
) -> None:
    snapshot: dict[str, Any] = event["data"]["object"]
    invoice = (await client.v1.invoices.retrieve_async(str(snapshot["id"]))).to_dict()
    # Stripe's current status wins; a failure shows only while the invoice is still unpaid.
    if invoice.get("status") == "paid":
        status = "paid"
    elif event["type"] == "invoice.payment_failed":
        status = "payment_failed"
    else:
        status = str(invoice.get("status"))
    await conn.execute(
        """UPDATE subscriptions
              SET last_invoice_id = $2, last_invoice_status = $3, last_invoice_created = $4,
                  updated_at = now()
            WHERE id = $1
              AND (last_invoice_created IS NULL OR last_invoice_id = $2
                   OR last_invoice_created <= $4)""",
        sub_id,
        invoice["id"],
        status,
        _timestamp(invoice.get("created")),
    )


async def record_event_once(conn: Conn, event: dict[str, Any]) -> bool:
    """Store a Stripe event by id; True the first time only (webhooks are applied once)."""
    new: bool | None = await conn.fetchval(
        "INSERT INTO stripe_events (id, type) VALUES ($1, $2) "
        "ON CONFLICT (id) DO NOTHING RETURNING true",
        event["id"],
        event["type"],
    )
    return bool(new)


async def apply_event(conn: Conn, client: stripe.StripeClient, event: dict[str, Any]) -> bool:
    """Apply a verified subscription or invoice event once; False when seen before."""
    obj: dict[str, Any] = event["data"]["object"]
    if event["type"] in SUBSCRIPTION_EVENTS:
        sub_id: str | None = str(obj["id"])
    else:
        sub_id = subscription_of_invoice(obj)
        if sub_id is None:  # the snapshot may omit it; Stripe's invoice has it
            invoice = (await client.v1.invoices.retrieve_async(str(obj["id"]))).to_dict()
            sub_id = subscription_of_invoice(invoice)
    async with conn.transaction():
        new = await record_event_once(conn, event)
        if not new or sub_id is None:  # an invoice outside any subscription is not ours
            return new
        # One subscription's events are applied one at a time, each from Stripe's state read
        # under the lock, so a slower delivery cannot write an older state over a newer one.
        await lock_subscription(conn, sub_id)
        current = await _retrieve(client, sub_id)
        if current is not None:
            await mirror(conn, client, current)
        if event["type"] in INVOICE_EVENTS:
            await _record_invoice(conn, client, sub_id, event)
    return True


_COLUMNS = (
    "id, customer_id, user_id, pet_id, status, plan_id, current_period_end, "
    "cancel_at_period_end, last_invoice_id, last_invoice_status"
)


async def get_subscription(db: Db, sub_id: str) -> Subscription | None:
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM subscriptions WHERE id = $1",
        sub_id,
    )
    return Subscription(**dict(row)) if row is not None else None


async def subscriptions_of(db: Db, user_id: UUID) -> list[Subscription]:
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM subscriptions WHERE user_id = $1 ORDER BY id",
        user_id,
    )
    return [Subscription(**dict(row)) for row in rows]
