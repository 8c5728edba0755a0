"""One typed settings object, read from the environment and a `.env` file."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET_PREFIX = "dev-insecure-"


class Environment(StrEnum):
    development = "development"
    production = "production"


class SettingsError(Exception):
    """A setting that makes start-up impossible; its message is one line naming it."""


class Settings(BaseSettings):
    """Every variable of CONTRACT.md, with safe development defaults."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    pawhub_env: Environment = Environment.development
    database_url: str | None = None
    redis_url: str | None = None
    # Prefix of every Redis key and pub/sub channel: deployments and test runs can share a Redis.
    redis_namespace: str = "pawhub"
    s3_endpoint_url: str | None = None
    s3_bucket: str = "pawhub"
    s3_region: str = "us-east-1"
    # Unset in production on AWS: the default credential chain (instance role) applies.
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    jwt_secret: str = DEV_SECRET_PREFIX + "jwt-secret-change-me-0123456789"
    stripe_api_key: str = DEV_SECRET_PREFIX + "stripe-key"
    stripe_api_base: str | None = None
    stripe_webhook_secret: str = DEV_SECRET_PREFIX + "stripe-webhook-secret"
    # A video consult's fee, held at booking (0: consults are free and nothing is held).
    consult_fee_minor: int = Field(default=0, ge=0)
    consult_fee_currency: str = Field(default="eur", pattern=r"^[a-z]{3}$")
    # The platform's share, in percent, of a destination charge paying a vet's Connect account.
    platform_fee_percent: float = Field(default=10.0, ge=0, le=100)
    # The monthly wellness plan's Stripe price (or plan) id; unset: subscribing answers 503.
    wellness_plan_price_id: str | None = None
    # An order still unpaid this long after it was placed is cancelled and its stock returned.
    order_payment_deadline_min: int = Field(default=30, ge=1)
    # Comma-separated, e.g. "turn:turn.example.com:3478?transport=udp,turns:turn.example.com:5349".
    turn_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    turn_secret: str = DEV_SECRET_PREFIX + "turn-secret"
    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: str | None = None
    detoxify_checkpoint: str | None = None
    chat_rate_limit: int = Field(default=20, ge=0)
    # Per-label score thresholds over the model's defaults, as JSON: {"threat": 0.4}.
    moderation_thresholds: dict[str, float] = Field(default_factory=dict)
    # Labels grave enough to refuse a message before it is stored (comma-separated; empty: off).
    moderation_block_labels: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["threat"]
    )
    # /rtc: how long a dropped peer keeps its place, and a replica's lease on its members.
    rtc_reconnect_grace_s: float = Field(default=30.0, gt=0)
    rtc_replica_lease_s: float = Field(default=20.0, gt=0)
    data_dir: str = ".pawhub"

    @field_validator("turn_urls", "moderation_block_labels", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @property
    def is_production(self) -> bool:
        return self.pawhub_env is Environment.production

    def check_production(self) -> None:
        """Refuse production start-up with a development or missing secret, naming it."""
        if not self.is_production:
            return
        for name in ("database_url", "redis_url"):
            if not getattr(self, name):
                raise SettingsError(f"{name.upper()} must be set when PAWHUB_ENV=production")
        for name in ("jwt_secret", "stripe_api_key", "stripe_webhook_secret", "turn_secret"):
            value: str = getattr(self, name)
            if not value or value.startswith(DEV_SECRET_PREFIX):
                raise SettingsError(
                    f"{name.upper()} is missing or a development default; "
                    "set a real secret when PAWHUB_ENV=production"
                )
        if len(self.jwt_secret) < 32:
            raise SettingsError(
                "JWT_SECRET must be at least 32 characters when PAWHUB_ENV=production"
            )
        if self.livekit_url and not (self.livekit_api_key and self.livekit_api_secret):
            raise SettingsError(
                "LIVEKIT_API_KEY and LIVEKIT_API_SECRET must be set with LIVEKIT_URL"
            )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
