"""The Stripe client the payment routes use, built once per app from its settings."""

from __future__ import annotations

import stripe
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from domain.commerce.booking_fees import FeeTerms
from domain.commerce.payments import stripe_client
from rest.config import settings_of


def provide_stripe(state: State) -> stripe.StripeClient:
    client: stripe.StripeClient | None = state.get("stripe")
    if client is None:
        settings = settings_of(state)
        client = stripe_client(settings.stripe_api_key, settings.stripe_api_base)
        state.stripe = client
    return client


def provide_fee_terms(state: State) -> FeeTerms:
    settings = settings_of(state)
    return FeeTerms(
        settings.consult_fee_minor, settings.consult_fee_currency, settings.platform_fee_percent
    )


Stripe = NamedDependency[stripe.StripeClient]
ConsultFeeTerms = NamedDependency[FeeTerms]
STRIPE_DEPENDENCIES = {"stripe_api": Provide(provide_stripe, sync_to_thread=False)}
FEE_DEPENDENCIES = {
    **STRIPE_DEPENDENCIES,
    "fee_terms": Provide(provide_fee_terms, sync_to_thread=False),
}
