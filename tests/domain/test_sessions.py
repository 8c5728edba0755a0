"""Refresh-token rotation and login limits against real PostgreSQL and Redis."""

from uuid import uuid4

import asyncpg
import pytest
import redis.asyncio as aioredis

from domain import refresh_tokens
from domain.errors import RateLimited
from domain.identity import Role
from domain.login_limits import LoginLimiter
from domain.refresh_tokens import InvalidRefreshToken


async def test_rotation_spends_tokens_and_reuse_revokes_the_family(
    pool: asyncpg.Pool, make_user
) -> None:  # type: ignore[no-untyped-def]
    user, _ = await make_user(Role.owner)
    async with pool.acquire() as conn:
        first = await refresh_tokens.start_family(conn, user.id)
        other_device = await refresh_tokens.start_family(conn, user.id)
        owner, second = await refresh_tokens.rotate(conn, first)
        assert owner == user
        with pytest.raises(InvalidRefreshToken, match="reused"):
            await refresh_tokens.rotate(conn, first)
        with pytest.raises(InvalidRefreshToken):
            await refresh_tokens.rotate(conn, second)
        # Another sign-in is another family, untouched.
        assert (await refresh_tokens.rotate(conn, other_device))[0] == user
        token_id, _, _ = first.partition(".")
        with pytest.raises(InvalidRefreshToken, match="unknown"):
            await refresh_tokens.rotate(conn, f"{token_id}.wrong-secret")


async def test_login_limits_per_email_and_per_ip(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    namespace = f"test-limits-{uuid4().hex[:8]}"
    limiter = LoginLimiter(redis, namespace, per_email=3, per_ip=5)
    try:
        for _ in range(3):
            await limiter.hit("Ann@Example.com", "10.0.0.1", now=1000.0)
        with pytest.raises(RateLimited) as limited:
            await limiter.hit("ann@example.com", "10.0.0.2", now=1001.0)
        assert 1 <= limited.value.retry_after_s <= 60
        # 10.0.0.1 has made 3 attempts; two more emails reach its budget of 5.
        await limiter.hit("bob@example.com", "10.0.0.1", now=1002.0)
        await limiter.hit("carol@example.com", "10.0.0.1", now=1002.0)
        with pytest.raises(RateLimited):
            await limiter.hit("dave@example.com", "10.0.0.1", now=1003.0)
        # The window slides: attempts older than a minute no longer count...
        await limiter.hit("ann@example.com", "10.0.0.1", now=1080.0)
        # ...and a burst across a minute's edge is still one burst.
        for _ in range(3):
            await limiter.hit("erin@example.com", "10.0.0.3", now=1199.0)
        with pytest.raises(RateLimited):
            await limiter.hit("erin@example.com", "10.0.0.3", now=1201.0)
        assert all(key.decode().startswith(namespace) for key in await redis.keys(f"{namespace}*"))
        assert await redis.keys(f"{namespace}*")
    finally:
        await redis.aclose()
