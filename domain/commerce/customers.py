"""One Stripe customer per user, created lazily the first time they pay: the create call's
idempotency key is derived from our user id, and the customer's metadata names the user (which
is how subscription webhooks find their owner)."""

from __future__ import annotations

from uuid import UUID

import stripe

from domain.commerce.payments import idempotency_key
from domain.db import Db
from domain.errors import NotFound


async def stored_customer(db: Db, user_id: UUID) -> str | None:
    customer_id: str | None = await db.fetchval(
        "SELECT customer_id FROM stripe_customers WHERE user_id = $1", user_id
    )
    return customer_id


async def ensure_customer(db: Db, client: stripe.StripeClient, user_id: UUID) -> str:
    """The user's Stripe customer id, creating the customer once. No transaction is held while
    Stripe answers; two concurrent first payments send the same key, get the same customer
    from Stripe, and the second insert is a no-op."""
    if (found := await stored_customer(db, user_id)) is not None:
        return found
    email = await db.fetchval("SELECT email FROM users WHERE id = $1", user_id)
    if email is None:
        raise NotFound("no such user")
    customer = await client.v1.customers.create_async(
        {"email": str(email), "metadata": {"user_id": str(user_id)}},
        {"idempotency_key": idempotency_key("customer", user_id)},
    )
    await db.execute(
        "INSERT INTO stripe_customers (user_id, customer_id) VALUES ($1, $2) "
        "ON CONFLICT (user_id) DO NOTHING",
        user_id,
        customer.id,
    )
    stored = await stored_customer(db, user_id)
    assert stored is not None
    return stored
