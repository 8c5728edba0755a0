"""What the API reads from its settings.

The composition root (`pawhub.api`) puts the process's settings in `app.state.settings`;
`ApiSettings` names every value the REST layer reads there, so the layer states what it
depends on without importing the process layer above it (`pawhub.settings.Settings` provides
all of them, which mypy checks where the root builds the app).
"""

from __future__ import annotations

from typing import Protocol

from litestar.datastructures import State
from pydantic.networks import IPvAnyNetwork


class ApiSettings(Protocol):
    redis_namespace: str
    jwt_secret: str
    trusted_proxies: list[IPvAnyNetwork]
    cors_allowed_origins: list[str]
    registration_limit_per_hour: int
    conversation_limit_per_hour: int
    access_token_ttl_s: int
    stripe_api_key: str
    stripe_api_base: str | None
    stripe_webhook_secret: str
    consult_fee_minor: int
    consult_fee_currency: str
    platform_fee_percent: float
    wellness_plan_price_id: str | None
    order_payment_deadline_min: int
    livekit_api_key: str | None
    livekit_api_secret: str | None


def settings_of(state: State) -> ApiSettings:
    """The settings the composition root put in the app's state."""
    settings: ApiSettings = state.settings
    return settings
