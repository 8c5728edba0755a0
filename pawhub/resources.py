"""Connections the services hold: the PostgreSQL pool, the Redis client, their health, and the
S3 client."""

from __future__ import annotations

import asyncio
from typing import Any

import aioboto3
import asyncpg
import redis.asyncio as aioredis
from aiobotocore.config import AioConfig
from redis.asyncio.cluster import RedisCluster

from domain.redis_client import RedisClient
from pawhub.settings import Settings

_CHECK_TIMEOUT_S = 2.0


async def _skip_session_reset(_: asyncpg.Connection) -> None:
    """pawhub keeps no session state (no SET, LISTEN or session advisory locks on pooled
    connections), so the reset round trip asyncpg makes on every release buys nothing."""


async def open_pool(database_url: str, *, max_size: int, min_size: int = 2) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=30,
        reset=_skip_session_reset,
    )
    assert pool is not None
    return pool


_MAX_CONNECTIONS = 100  # per process
_WAIT_FOR_CONNECTION_S = 5.0  # as long as a command may take (the socket timeout)
# redis-py's cluster client cannot wait for a connection: past this many to one node, a
# command fails. Ten times one Redis's pool, for the same bursts.
_MAX_CONNECTIONS_PER_NODE = 1000


def open_redis(redis_url: str, *, cluster: bool = False) -> RedisClient:
    """A client of one Redis, or of the Redis Cluster `redis_url` names one node of."""
    # Every call has a socket timeout, so a dead Redis fails fast instead of hanging a handler.
    timeouts: dict[str, Any] = {
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
        "health_check_interval": 10,
    }
    if cluster:
        return RedisCluster.from_url(
            redis_url, max_connections=_MAX_CONNECTIONS_PER_NODE, **timeouts
        )
    # A burst past the pool's connections (hundreds of clients leaving at once, each leave a
    # presence update) waits for one to come free, instead of failing what did not fit.
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url,
        max_connections=_MAX_CONNECTIONS,
        timeout=_WAIT_FOR_CONNECTION_S,
        retry_on_timeout=False,
        **timeouts,
    )
    return aioredis.Redis.from_pool(pool)


# Credentials any S3 stand-in accepts: the embedded store checks none.
_DEV_CREDENTIALS = {"aws_access_key_id": "pawhub-dev", "aws_secret_access_key": "pawhub-dev"}


def open_s3(settings: Settings) -> Any:
    """An aioboto3 S3 client (an async context manager) for the settings' endpoint: short
    timeouts and few retries, so an unreachable S3 fails fast."""
    credentials: dict[str, str | None] = {
        "aws_access_key_id": settings.s3_access_key_id,
        "aws_secret_access_key": settings.s3_secret_access_key,
    }
    if settings.s3_endpoint_url and not settings.s3_access_key_id and not settings.is_production:
        credentials = {**_DEV_CREDENTIALS}
    config = AioConfig(
        signature_version="s3v4",
        connect_timeout=2,
        read_timeout=10,
        retries={"max_attempts": 2, "mode": "standard"},
        # Path-style URLs work with any endpoint (moto, MinIO, an IP address).
        s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
    )
    return aioboto3.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        config=config,
        **credentials,
    )


async def check_dependencies(pool: asyncpg.Pool, redis: RedisClient) -> dict[str, str]:
    """Probe PostgreSQL and Redis; each value is "ok" or the reason it is not."""

    async def probe(name: str, call: asyncio.Future[object]) -> tuple[str, str]:
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT_S):
                await call
            return name, "ok"
        except Exception as exc:  # every failure is a reason to report, none to raise
            return name, f"{type(exc).__name__}: {exc}".strip().rstrip(":")

    results = await asyncio.gather(
        probe("postgresql", asyncio.ensure_future(pool.fetchval("SELECT 1"))),
        probe("redis", asyncio.ensure_future(redis.ping())),
    )
    return dict(results)


class DatabaseUnreachable(RuntimeError):
    """PostgreSQL could not be reached; the message is one line, without credentials."""


def _where(database_url: str) -> str:
    """The URL without its password, fit for an error line."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(database_url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
    except ValueError:
        return "an unparsable DATABASE_URL"


async def connect_once(database_url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(database_url, timeout=10)
    except (
        OSError,
        TimeoutError,
        ValueError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
    ) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatabaseUnreachable(
            f"cannot use the database at {_where(database_url)}: {reason}"
        ) from exc


async def migrate_database(database_url: str) -> list[str]:
    """Apply pending migrations; return the versions applied now."""
    from domain.migrate import apply_migrations

    conn = await connect_once(database_url)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


async def ensure_reachable(database_url: str) -> None:
    """Fail fast, in one line, when a service starts against a database it cannot reach."""
    conn = await connect_once(database_url)
    await conn.close()
