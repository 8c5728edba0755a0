"""Refresh-token rotation and login limits against real PostgreSQL and Redis."""

from uuid import uuid4

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from domain.errors import RateLimited
from domain.identity import Role, refresh_tokens
from domain.identity.login_limits import login_budgets
from domain.identity.refresh_tokens import InvalidRefreshToken
from domain.rate_limits import RateLimits


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


async def test_login_limits_per_email_and_address_and_per_address(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    namespace = f"test-limits-{uuid4().hex[:8]}"
    limits = RateLimits(redis, namespace)

    async def attempt(email: str, ip: str, now: float) -> None:
        await limits.spend(*login_budgets(email, ip, per_pair=3, per_ip=5, window_s=60), now=now)

    try:
        for _ in range(3):
            await attempt("Ann@Example.com", "10.0.0.1", 1000.0)
        with pytest.raises(RateLimited) as limited:
            await attempt("ann@example.com", "10.0.0.1", 1001.0)
        assert 1 <= limited.value.retry_after_s <= 60
        # Another address is another pair: the stranger at 10.0.0.1 has not locked Ann out.
        await attempt("ann@example.com", "10.0.0.2", 1001.0)
        # 10.0.0.1 has made 3 counted attempts; two more emails reach its budget of 5.
        await attempt("bob@example.com", "10.0.0.1", 1002.0)
        await attempt("carol@example.com", "10.0.0.1", 1002.0)
        with pytest.raises(RateLimited):
            await attempt("dave@example.com", "10.0.0.1", 1003.0)
        # The window slides: attempts older than a minute no longer count...
        await attempt("ann@example.com", "10.0.0.1", 1080.0)
        # ...and a burst across a minute's edge is still one burst.
        for _ in range(3):
            await attempt("erin@example.com", "10.0.0.3", 1199.0)
        with pytest.raises(RateLimited):
            await attempt("erin@example.com", "10.0.0.3", 1201.0)
        assert all(key.decode().startswith(namespace) for key in await redis.keys(f"{namespace}*"))
        assert await redis.keys(f"{namespace}*")
    finally:
        await redis.aclose()


@pytest.mark.parametrize(
    "ip", ["10.0.0.1", "2001:db8::1", "::ffff:10.0.0.1", "unknown", "", "{", "}", "{}", "a}b{c"]
)
def test_login_budgets_share_one_well_formed_hash_tag(ip: str) -> None:
    # One script spends both budgets: on a Redis Cluster their keys must hash to one slot,
    # whatever address the client gave (an unparsable one comes through as it was).
    keys = [f"pawhub:limit:{budget.name}" for budget in login_budgets("ann@example.com", ip)]
    tags = [key[key.index("{") + 1 : key.index("}")] for key in keys]
    assert tags[0] and tags[0] == tags[1] and "{" not in tags[0]
    assert key_slot(keys[0].encode()) == key_slot(keys[1].encode())
    assert login_budgets("bob@example.com", ip)[1] == login_budgets("ann@example.com", ip)[1]


async def test_a_refund_gives_the_attempt_back_in_every_budget(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    limits = RateLimits(redis, f"test-refund-{uuid4().hex[:8]}")
    budgets = login_budgets("ann@example.com", "10.0.0.9", per_pair=1, per_ip=1, window_s=60)
    try:
        await limits.refund(await limits.spend(*budgets))
        await limits.spend(*budgets)
        with pytest.raises(RateLimited):
            await limits.spend(*budgets)
    finally:
        await redis.aclose()
