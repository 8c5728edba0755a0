"""The Stripe client the payment routes use, built once per app from its settings."""

from __future__ import annotations

import stripe
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from domain.payments import stripe_client
from pawhub.settings import Settings


def provide_stripe(state: State) -> stripe.StripeClient:
    client: stripe.StripeClient | None = state.get("stripe")
    if client is None:
        settings: Settings = state.settings
        client = stripe_client(settings.stripe_api_key, settings.stripe_api_base)
        state.stripe = client
    return client


Stripe = NamedDependency[stripe.StripeClient]
STRIPE_DEPENDENCIES = {"stripe_api": Provide(provide_stripe, sync_to_thread=False)}
