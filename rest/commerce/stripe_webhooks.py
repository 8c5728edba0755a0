"""`POST /v1/webhooks/stripe`: Stripe's events, verified with STRIPE_WEBHOOK_SECRET through the
stripe library (300 s tolerance), stored by id and applied once."""

from __future__ import annotations

import json
from typing import Any

import stripe
from litestar import Request, post
from litestar.datastructures import State
from litestar.exceptions import ValidationException

from domain.commerce import payments
from rest.auth import Db
from rest.commerce.payments import STRIPE_DEPENDENCIES, Stripe
from rest.config import settings_of
from rest.problems import problem_responses

TOLERANCE_S = 300


@post(
    "/v1/webhooks/stripe",
    tags=["webhooks"],
    summary="Stripe webhook, verified with STRIPE_WEBHOOK_SECRET",
    description="A forged, unsigned or stale (over 300 s) delivery answers 400.",
    status_code=200,
    opt={"exclude_from_auth": True},
    security=[],
    dependencies=STRIPE_DEPENDENCIES,
    responses=problem_responses(400),
)
async def stripe_webhook(
    request: Request[Any, Any, Any], state: State, db: Db, stripe_api: Stripe
) -> dict[str, Any]:
    settings = settings_of(state)
    body = await request.body()
    try:
        stripe.Webhook.construct_event(
            body,
            request.headers.get("stripe-signature"),
            settings.stripe_webhook_secret,
            TOLERANCE_S,
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise ValidationException("the Stripe signature is missing, forged or stale") from exc
    event: dict[str, Any] = json.loads(body)
    applied = await payments.apply_event(db, stripe_api, event)
    return {"received": True, "applied": applied}
