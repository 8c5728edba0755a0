"""One typed settings object, read from the environment and a `.env` file."""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, IPvAnyNetwork, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.identity.tokens import ACCESS_TOKEN_TTL

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
    # PostgreSQL connections one hub or API process opens at most: the replicas' sum must stay
    # under the server's max_connections (100 by default).
    database_pool_size: int = Field(default=20, ge=2)
    redis_url: str | None = None
    # REDIS_URL names one node of a Redis Cluster (7 or newer): the client finds the others.
    redis_cluster: bool = False
    # Prefix of every Redis key and pub/sub channel: deployments and test runs can share a Redis.
    redis_namespace: str = "pawhub"
    s3_endpoint_url: str | None = None
    s3_bucket: str = "pawhub"
    s3_region: str = "us-east-1"
    # Unset in production on AWS: the default credential chain (instance role) applies.
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    # Days a recording is kept after it stops (then `pawhub recordings purge` deletes its media).
    recording_retention_days: int = Field(default=5 * 365, ge=1)
    # Where a hub writes recording segments before S3 takes them, and how much may wait there.
    recording_buffer_dir: Path = Path(".pawhub/recordings")
    recording_buffer_max_bytes: int = Field(default=2 * 1024**3, ge=1024**2)
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
    # Janus's WebSocket API (e.g. ws://127.0.0.1:8188): `sfu` consults' media goes through its
    # VideoRoom instead of the hub's embedded SFU.
    janus_url: str | None = None
    # Janus's `api_secret` (janus.jcfg) and its VideoRoom's `admin_key`, where Janus has them.
    janus_api_secret: str | None = None
    janus_admin_key: str | None = None
    detoxify_checkpoint: str | None = None
    chat_rate_limit: int = Field(default=20, ge=0)
    # Connections one address may hold open on a hub at once (0: no bound). Behind a proxy or
    # load balancer every client arrives from its address: set 0 and bound them there.
    max_connections_per_ip: int = Field(default=256, ge=0)
    # Seconds a hub keeps serving after SIGTERM while /healthz already says draining, for load
    # balancers that poll it; within the hub's 10 s drain bound (realtime.drain).
    hub_drain_notice_s: float = Field(default=0.0, ge=0, le=5)
    fanout_write_delay_ms: float = Field(default=0.0, ge=0, le=20)
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
    # Proxies (comma-separated addresses or CIDRs) whose X-Forwarded-For the API believes;
    # empty: the client is the socket's peer and the header is ignored.
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)
    # Where browsers reach the REST API (the pages under /app/ call it), and the page origins
    # the API answers cross-origin (comma-separated); `pawhub up` sets both for its own ports.
    public_api_url: str = "http://127.0.0.1:8000"
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://127.0.0.1:8080", "http://localhost:8080"]
    )
    # Accounts a client address may try to register per hour.
    registration_limit_per_hour: int = Field(default=10, ge=1)
    # Conversations a user may create per hour.
    conversation_limit_per_hour: int = Field(default=30, ge=1)
    # How long an access token lives (clients refresh it; sockets renew it with `auth`).
    access_token_ttl_s: int = Field(default=int(ACCESS_TOKEN_TTL.total_seconds()), ge=15)

    @field_validator(
        "turn_urls",
        "moderation_block_labels",
        "trusted_proxies",
        "cors_allowed_origins",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    def child_environment(self) -> dict[str, str]:
        """This process's environment, pointing a child `pawhub` process at the same
        PostgreSQL, Redis (namespace included) and JWT secret."""
        return {
            **os.environ,
            "DATABASE_URL": self.database_url or "",
            "DATABASE_POOL_SIZE": str(self.database_pool_size),
            "REDIS_URL": self.redis_url or "",
            "REDIS_NAMESPACE": self.redis_namespace,
            "REDIS_CLUSTER": str(self.redis_cluster).lower(),
            "JWT_SECRET": self.jwt_secret,
        }

    @property
    def has_s3(self) -> bool:
        """S3 is reachable: a configured endpoint or keys, or production's credential chain."""
        return bool(self.s3_endpoint_url or self.s3_access_key_id or self.is_production)

    @property
    def is_production(self) -> bool:
        return self.pawhub_env is Environment.production

    def check_production(self) -> None:
        """Refuse start-up with a development or missing secret, naming it: in production,
        and (the JWT secret) whenever the database is not on this machine."""
        if not self.is_production:
            self.check_secrets()  # production refuses every development secret below
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

    def check_secrets(self) -> None:
        """Refuse the development JWT secret next to a database off this machine, whatever
        PAWHUB_ENV says: anyone can mint tokens with the published default."""
        if self.jwt_secret.startswith(DEV_SECRET_PREFIX) and not _on_loopback(self.database_url):
            raise SettingsError(
                "JWT_SECRET is the development default but DATABASE_URL is not on loopback; "
                "set a real JWT_SECRET"
            )


def _on_loopback(database_url: str | None) -> bool:
    """Whether every host of a libpq-style URL is this machine: unset (embedded servers),
    127.0.0.0/8, ::1, localhost or a unix socket directory."""
    return not database_url or all(_is_local_host(host) for host in _hosts(database_url))


def _hosts(database_url: str) -> list[str]:
    """The hosts a libpq-style URL names: `?host=` wins over the authority's `h1:p1,h2:p2`."""
    parts = urlsplit(database_url)
    if from_query := parse_qs(parts.query).get("host"):
        return [host for value in from_query for host in value.split(",")]
    hosts = []
    for host_port in parts.netloc.rpartition("@")[2].split(","):
        if host_port.startswith("["):
            hosts.append(host_port[1 : host_port.find("]")])
        else:
            hosts.append(unquote(host_port.partition(":")[0]))
    return hosts


def _is_local_host(host: str) -> bool:
    # No host means a unix socket, unless PGHOST names one (as libpq and asyncpg read it).
    host = host or os.environ.get("PGHOST", "")
    if not host or host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
