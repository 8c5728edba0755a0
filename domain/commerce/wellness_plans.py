"""Wellness plans: an owner subscribes a pet to the monthly plan (a Stripe subscription created
from our side) and cancels it. The row is mirrored from Stripe's answer at once, and from then
on from webhooks (domain/commerce/subscriptions.py), under the same per-subscription lock."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

import stripe
from pydantic import BaseModel, ConfigDict

from domain.commerce import subscriptions
from domain.commerce.customers import ensure_customer
from domain.commerce.payments import idempotency_key
from domain.commerce.subscriptions import Subscription
from domain.db import Conn, Db
from domain.errors import Conflict, NotFound

# Stripe states in which a subscription no longer covers its pet.
ENDED = ("canceled", "incomplete_expired")


class NewPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pet_id: UUID


class PlanCancellation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # True: the plan runs until the paid period ends; False: it ends now.
    at_period_end: bool = True


class PlanSubscription(BaseModel):
    """A subscription as its owner sees it; `client_secret` lets Stripe.js pay a first invoice
    the customer's saved card could not (status `incomplete`)."""

    id: str
    pet_id: UUID | None
    status: str
    plan_id: str | None
    cancel_at_period_end: bool
    current_period_end: datetime | None
    client_secret: str | None = None


def _shown(sub: Subscription, client_secret: str | None = None) -> PlanSubscription:
    return PlanSubscription(
        id=sub.id,
        pet_id=sub.pet_id,
        status=sub.status,
        plan_id=sub.plan_id,
        cancel_at_period_end=sub.cancel_at_period_end,
        current_period_end=sub.current_period_end,
        client_secret=client_secret,
    )


async def _store(conn: Conn, client: stripe.StripeClient, sub: dict[str, Any]) -> Subscription:
    async with conn.transaction():
        await subscriptions.lock_subscription(conn, str(sub["id"]))
        await subscriptions.mirror(conn, client, sub)
    stored = await subscriptions.get_subscription(conn, str(sub["id"]))
    assert stored is not None
    return stored


async def _first_invoice_secret(client: stripe.StripeClient, sub: dict[str, Any]) -> str | None:
    """The client secret of the PaymentIntent of an incomplete subscription's first invoice."""
    invoice_ref = sub.get("latest_invoice")
    if sub.get("status") != "incomplete" or not invoice_ref:
        return None
    invoice_id = invoice_ref if isinstance(invoice_ref, str) else str(invoice_ref["id"])
    invoice = (await client.v1.invoices.retrieve_async(invoice_id)).to_dict()
    intent_ref = invoice.get("payment_intent")
    if not intent_ref:
        return None
    intent_id = intent_ref if isinstance(intent_ref, str) else str(intent_ref["id"])
    intent = await client.v1.payment_intents.retrieve_async(intent_id)
    return intent.client_secret


async def check_pet(db: Db, owner_id: UUID, pet_id: UUID) -> None:
    """NotFound unless the pet is the owner's."""
    if not await db.fetchval(
        "SELECT true FROM pets WHERE id = $1 AND owner_id = $2", pet_id, owner_id
    ):
        raise NotFound("no such pet")


async def subscribe(
    conn: Conn, client: stripe.StripeClient, owner_id: UUID, new: NewPlan, price_id: str
) -> PlanSubscription:
    """Subscribe the owner's pet (NotFound for anyone else's) to the monthly plan; Conflict
    while the pet has a live plan. The create call's idempotency key is derived from the pet
    and how many plans it had, so a retried or doubled request makes one subscription."""
    await check_pet(conn, owner_id, new.pet_id)
    counts = await conn.fetchrow(
        "SELECT count(*) AS every, count(*) FILTER (WHERE status <> ALL($2::text[])) AS live "
        "FROM subscriptions WHERE pet_id = $1",
        new.pet_id,
        list(ENDED),
    )
    assert counts is not None
    if counts["live"]:
        raise Conflict("this pet already has a wellness plan")
    customer = await ensure_customer(conn, client, owner_id)
    attempt = uuid5(new.pet_id, f"wellness-plan-{counts['every']}")
    created = await client.v1.subscriptions.create_async(
        {
            "customer": customer,
            "items": [{"plan": price_id}],
            "metadata": {"user_id": str(owner_id), "pet_id": str(new.pet_id)},
        },
        {"idempotency_key": idempotency_key("wellness-plan", attempt)},
    )
    sub = created.to_dict()
    stored = await _store(conn, client, sub)
    return _shown(stored, await _first_invoice_secret(client, sub))


async def _owned(db: Db, owner_id: UUID, sub_id: str) -> Subscription:
    sub = await subscriptions.get_subscription(db, sub_id)
    if sub is None or sub.user_id != owner_id:
        raise NotFound("no such subscription")
    return sub


async def cancel(
    conn: Conn,
    client: stripe.StripeClient,
    owner_id: UUID,
    sub_id: str,
    how: PlanCancellation,
) -> PlanSubscription:
    """The owner cancels their plan now or at the end of the paid period (both repeatable)."""
    sub = await _owned(conn, owner_id, sub_id)
    if sub.status in ENDED:
        return _shown(sub)
    if how.at_period_end:
        answer = await client.v1.subscriptions.update_async(sub_id, {"cancel_at_period_end": True})
    else:
        answer = await client.v1.subscriptions.cancel_async(sub_id)
    return _shown(await _store(conn, client, answer.to_dict()))


async def plans_of(db: Db, owner_id: UUID) -> list[PlanSubscription]:
    return [_shown(sub) for sub in await subscriptions.subscriptions_of(db, owner_id)]
