"""Stripe payments for orders: PaymentIntents created with idempotency keys derived from our own
ids, and webhook events applied once each, from the object's current state at Stripe (so
events delivered late or out of order cannot move an order backwards)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import stripe
from stripe.params import PaymentIntentCreateParams

from domain.commerce import orders, subscriptions
from domain.commerce.orders import Order, OrderStatus
from domain.commerce.payouts import DEFAULT_PLATFORM_FEE_PERCENT, destination_for
from domain.db import Conn

log = logging.getLogger(__name__)

HANDLED_EVENTS = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "charge.refunded",
    }
)
# Subscription and invoice events are mirrored by domain/commerce/subscriptions.py.
ALL_HANDLED_EVENTS = HANDLED_EVENTS | subscriptions.EVENTS


def stripe_client(api_key: str, api_base: str | None) -> stripe.StripeClient:
    """A client on `api_base` (localstripe in development) or api.stripe.com, async over httpx."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        http_client=stripe.HTTPXClient(),
        max_network_retries=2,
    )


def idempotency_key(kind: str, our_id: UUID) -> str:
    """The same key for every attempt at one Stripe call about one of our objects."""
    return f"pawhub-{kind}-{our_id}"


@dataclass(frozen=True)
class Payment:
    payment_intent_id: str
    client_secret: str


async def start_payment(
    conn: Conn,
    client: stripe.StripeClient,
    order: Order,
    *,
    platform_fee_percent: float = DEFAULT_PLATFORM_FEE_PERCENT,
) -> Payment:
    """The order's PaymentIntent, created once: a retry finds it stored (and Stripe answers a
    repeated create with the same idempotency key by the first PaymentIntent). An order of a
    vet's products with a connected account is a destination charge paying that vet."""
    stored = await conn.fetchrow(
        "SELECT payment_intent_id, client_secret FROM orders WHERE id = $1", order.id
    )
    if stored is not None and stored["payment_intent_id"]:
        return Payment(stored["payment_intent_id"], stored["client_secret"])
    params: PaymentIntentCreateParams = {
        "amount": order.total_minor,
        "currency": order.currency,
        "metadata": {"order_id": str(order.id)},
    }
    destination = await destination_for(conn, order.vet_id, order.total_minor, platform_fee_percent)
    if destination is not None:
        destination.apply_to(params)
    intent = await client.v1.payment_intents.create_async(
        params, {"idempotency_key": idempotency_key("order-payment", order.id)}
    )
    assert intent.client_secret is not None
    await orders.set_payment_intent(conn, order.id, intent.id, intent.client_secret)
    return Payment(intent.id, intent.client_secret)


async def cancel_order(
    conn: Conn, client: stripe.StripeClient, buyer_id: UUID, order_id: UUID
) -> Order:
    """The buyer cancels an order still awaiting payment; its PaymentIntent is cancelled first,
    so a payment can no longer succeed for a cancelled order."""
    order = await orders.get_order(conn, buyer_id, order_id)
    orders.transition(order.status, OrderStatus.cancelled)
    await _cancel_intent(client, order)
    async with conn.transaction():
        return await orders.move(
            conn, await orders.lock_order(conn, order_id), OrderStatus.cancelled
        )


async def _cancel_intent(client: stripe.StripeClient, order: Order) -> None:
    if order.payment_intent_id:
        intent = await client.v1.payment_intents.retrieve_async(order.payment_intent_id)
        if intent.status != "canceled":
            await client.v1.payment_intents.cancel_async(
                order.payment_intent_id,
                options={"idempotency_key": idempotency_key("order-cancel", order.id)},
            )


async def expire_unpaid_orders(
    conn: Conn, client: stripe.StripeClient, deadline: timedelta, batch: int = 20
) -> int:
    """Cancel orders still awaiting payment `deadline` after they were placed: the
    PaymentIntent is cancelled at Stripe first (no lock held meanwhile), then the order, under
    its lock, if it is still pending, which gives its stock back. An order whose payment went
    through after all (a webhook still on its way) is moved forward instead. How many expired.

    Replicas may run this together: each step is keyed and re-checked under the order's lock."""
    expired = 0
    for order_id in await orders.unpaid_since(conn, deadline, batch):
        try:
            expired += await _expire(conn, client, order_id)
        except stripe.StripeError as exc:  # e.g. the buyer paid just now; next round decides
            log.warning("could not expire order %s: %s", order_id, exc)
    return expired


async def _expire(conn: Conn, client: stripe.StripeClient, order_id: UUID) -> bool:
    order = await orders.find_order(conn, order_id)
    targets = [OrderStatus.cancelled]
    if order.payment_intent_id:
        paid = await _payment_state(client, order.payment_intent_id)
        if paid and OrderStatus.cancelled not in paid:
            targets = paid
        else:
            await _cancel_intent(client, order)
    async with conn.transaction():
        order = await _walk(conn, order_id, targets)
    return order.status is OrderStatus.cancelled


async def _walk(conn: Conn, order_id: UUID, targets: list[OrderStatus]) -> Order:
    """Move the locked order through `targets`, skipping steps it already took."""
    order = await orders.lock_order(conn, order_id)
    for target in targets:
        if orders.may_transition(order.status, target):
            order = await orders.move(conn, order, target)
    return order


def _targets(intent_status: str, amount: int, amount_refunded: int) -> list[OrderStatus]:
    """The statuses an order goes through to match its payment at Stripe, in order."""
    if intent_status == "canceled":
        return [OrderStatus.cancelled]
    if intent_status != "succeeded":
        return []
    if amount_refunded >= amount:
        return [OrderStatus.paid, OrderStatus.refunded]
    if amount_refunded > 0:
        return [OrderStatus.paid, OrderStatus.partially_refunded]
    return [OrderStatus.paid]


async def _payment_state(client: stripe.StripeClient, payment_intent_id: str) -> list[OrderStatus]:
    intent = await client.v1.payment_intents.retrieve_async(payment_intent_id)
    charge_id = intent.latest_charge
    refunded = 0
    if intent.status == "succeeded" and charge_id:
        charge = await client.v1.charges.retrieve_async(
            charge_id if isinstance(charge_id, str) else charge_id.id
        )
        refunded = int(charge.amount_refunded or 0)
    return _targets(intent.status, int(intent.amount), refunded)


def _payment_intent_id(event: dict[str, Any]) -> str | None:
    obj: dict[str, Any] = event["data"]["object"]
    if event["type"].startswith("payment_intent."):
        return str(obj["id"])
    intent = obj.get("payment_intent")
    return str(intent) if intent else None


async def apply_event(conn: Conn, client: stripe.StripeClient, event: dict[str, Any]) -> bool:
    """Apply a verified Stripe event once; False when it was seen before or is not ours.

    The event's own snapshot may be stale: the PaymentIntent (and its charge) is re-fetched and
    the order walks forward to match it, skipping steps it already took. Subscription and
    invoice events go to `subscriptions.apply_event`, which keeps the same event store."""
    if event["type"] in subscriptions.EVENTS:
        return await subscriptions.apply_event(conn, client, event)
    intent_id = _payment_intent_id(event) if event["type"] in HANDLED_EVENTS else None
    order_id = await orders.order_for_payment_intent(conn, intent_id) if intent_id else None
    targets = await _payment_state(client, intent_id) if intent_id and order_id else []
    async with conn.transaction():
        new = await subscriptions.record_event_once(conn, event)
        if not new or order_id is None:
            return new
        await _walk(conn, order_id, targets)
    return True
