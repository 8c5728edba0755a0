"""Wellness-plan subscriptions mirrored from signed webhooks: each event applied once, and
out-of-order deliveries end in Stripe's current state (the subscription is re-fetched)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import stripe

from domain.commerce import subscriptions
from domain.identity import Role, User
from tests.payments.conftest import deliver, stripe_event
from tests.rest.conftest import MakeUser

CARD_OK = "4242424242424242"
CARD_DECLINED = "4000000000000341"  # attaches, then every charge is declined


@dataclass(frozen=True)
class Subscribed:
    """An owner subscribed to a fresh monthly plan with a card saved at Stripe."""

    owner: User
    plan: str
    sub: dict[str, Any]


@pytest.fixture
def subscribe(make_user: MakeUser, stripe_api: stripe.StripeClient) -> Subscribe:
    async def make(card: str = CARD_OK) -> Subscribed:
        owner, _ = await make_user(Role.owner)
        customer = await stripe_api.v1.customers.create_async(
            {"metadata": {"user_id": str(owner.id)}}
        )
        method = await stripe_api.v1.payment_methods.create_async(
            {
                "type": "card",
                "card": {"number": card, "exp_month": 12, "exp_year": 2040, "cvc": "123"},
            }
        )
        await stripe_api.v1.payment_methods.attach_async(method.id, {"customer": customer.id})
        await stripe_api.v1.customers.update_async(
            customer.id, {"invoice_settings": {"default_payment_method": method.id}}
        )
        plan = await stripe_api.v1.plans.create_async(
            {
                "amount": 1500,
                "currency": "eur",
                "interval": "month",
                "product": {"name": "Wellness"},
            }
        )
        sub = await stripe_api.v1.subscriptions.create_async(
            {"customer": customer.id, "items": [{"plan": plan.id}]}
        )
        return Subscribed(owner, plan.id, sub.to_dict())

    return make


Subscribe = Callable[..., Awaitable[Subscribed]]


def _latest_invoice(sub: dict[str, Any]) -> str:
    invoice = sub["latest_invoice"]
    return invoice if isinstance(invoice, str) else str(invoice["id"])


async def test_created_mirrors_the_subscription_once_with_its_owner(
    api: httpx.AsyncClient, pool: asyncpg.Pool, subscribe: Subscribe
) -> None:
    subscribed = await subscribe()
    owner, plan, sub = subscribed.owner, subscribed.plan, subscribed.sub
    event = stripe_event("customer.subscription.created", sub)
    answers = [(await deliver(api, event)).json()["applied"] for _ in range(5)]
    assert answers == [True, False, False, False, False]
    mirrored = await subscriptions.get_subscription(pool, sub["id"])
    assert mirrored is not None
    assert (mirrored.status, mirrored.plan_id, mirrored.user_id) == ("active", plan, owner.id)
    assert mirrored.current_period_end is not None
    assert int(mirrored.current_period_end.timestamp()) == sub["current_period_end"]
    assert await subscriptions.subscriptions_of(pool, owner.id) == [mirrored]
    assert await pool.fetchval("SELECT count(*) FROM stripe_events WHERE id = $1", event["id"]) == 1


async def test_a_stale_update_after_deleted_keeps_it_canceled(
    api: httpx.AsyncClient,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
    subscribe: Subscribe,
) -> None:
    created = (await subscribe()).sub
    deleted = (await stripe_api.v1.subscriptions.cancel_async(created["id"])).to_dict()
    # Delivered backwards: the deletion first, then the creation and an older update.
    stale_update = stripe_event("customer.subscription.updated", created)
    stale_update["created"] -= 10
    for event in (
        stripe_event("customer.subscription.deleted", deleted),
        stripe_event("customer.subscription.created", created),
        stale_update,
    ):
        response = await deliver(api, event)
        assert response.status_code == 200, response.text
        assert response.json()["applied"] is True
    mirrored = await subscriptions.get_subscription(pool, created["id"])
    assert mirrored is not None and mirrored.status == "canceled"


async def test_invoice_paid_and_a_late_failure_leave_it_paid(
    api: httpx.AsyncClient,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
    subscribe: Subscribe,
) -> None:
    """The invoice events arrive before any subscription event: the row is built from Stripe."""
    subscribed = await subscribe()
    owner, sub = subscribed.owner, subscribed.sub
    invoice = (await stripe_api.v1.invoices.retrieve_async(_latest_invoice(sub))).to_dict()
    assert invoice["status"] == "paid"
    paid = stripe_event("invoice.paid", invoice)
    failed = stripe_event("invoice.payment_failed", {**invoice, "status": "open"})
    for event in (paid, paid, failed, paid):
        assert (await deliver(api, event)).status_code == 200
    mirrored = await subscriptions.get_subscription(pool, sub["id"])
    assert mirrored is not None
    assert (mirrored.status, mirrored.user_id) == ("active", owner.id)
    assert (mirrored.last_invoice_id, mirrored.last_invoice_status) == (invoice["id"], "paid")


async def test_a_failed_first_invoice_is_recorded_against_the_subscription(
    api: httpx.AsyncClient, pool: asyncpg.Pool, subscribe: Subscribe
) -> None:
    sub = (await subscribe(card=CARD_DECLINED)).sub
    assert sub["status"] == "incomplete"
    invoice_id = _latest_invoice(sub)
    # Only the invoice's id in the snapshot: its subscription is looked up at Stripe.
    failed = stripe_event("invoice.payment_failed", {"id": invoice_id, "object": "invoice"})
    for _ in range(3):
        assert (await deliver(api, failed)).status_code == 200
    mirrored = await subscriptions.get_subscription(pool, sub["id"])
    assert mirrored is not None
    assert (mirrored.status, mirrored.last_invoice_id, mirrored.last_invoice_status) == (
        "incomplete",
        invoice_id,
        "payment_failed",
    )


async def test_a_subscription_unknown_to_stripe_is_recorded_but_not_mirrored(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    event = stripe_event(
        "customer.subscription.updated",
        {"id": "sub_unknown_to_stripe", "object": "subscription", "status": "active"},
    )
    assert (await deliver(api, event)).json()["applied"] is True
    assert (await deliver(api, event)).json()["applied"] is False
    assert await subscriptions.get_subscription(pool, "sub_unknown_to_stripe") is None


def test_plan_and_period_are_read_from_either_api_shape() -> None:
    newer = {"items": {"data": [{"price": {"id": "price_1"}, "current_period_end": 1_800_000_000}]}}
    older = {"current_period_end": 1_800_000_000, "items": {"data": [{"plan": "plan_1"}]}}
    assert subscriptions.plan_of(newer) == "price_1"
    assert subscriptions.plan_of(older) == "plan_1"
    assert subscriptions.period_end_of(newer) == subscriptions.period_end_of(older)
    assert (
        subscriptions.subscription_of_invoice(
            {"parent": {"subscription_details": {"subscription": "sub_1"}}}
        )
        == "sub_1"
    )
    assert subscriptions.subscription_of_invoice({"subscription": "sub_2"}) == "sub_2"
