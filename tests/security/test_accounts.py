"""Accounts under attack, against the real API: registration limited per client address (the
socket's, unless a trusted proxy forwards it), failed logins locking out one (email, address)
pair only, and sign-out revoking the whole refresh family."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import IPvAnyNetwork, TypeAdapter

from domain.errors import RateLimited
from domain.identity import Role, refresh_tokens
from domain.identity.login_limits import registration_budget
from domain.identity.refresh_tokens import InvalidRefreshToken
from domain.rate_limits import RateLimits
from pawhub.settings import Settings
from rest.auth import forwarded_client
from tests.conftest import serve_api
from tests.rest.conftest import MakeUser
from tests.security.problems import assert_problem

PASSWORD = "correct horse"  # make_user's


@asynccontextmanager
async def client(url: str, source: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose connections come from `source` (any 127.x address is this host)."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(base_url=url, timeout=30, transport=transport) as http:
        yield http


def isolated(settings: Settings, **updates: Any) -> Settings:
    """`settings` with a Redis namespace of its own, so its budgets start empty."""
    namespace = f"{settings.redis_namespace}-{uuid4().hex[:8]}"
    return settings.model_copy(update={"redis_namespace": namespace, **updates})


async def register(
    http: httpx.AsyncClient, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await http.post(
        "/v1/auth/register",
        json={"email": f"{uuid4().hex[:12]}@example.com", "password": PASSWORD, "name": "Ann"},
        headers=headers,
    )


async def login(http: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await http.post("/v1/auth/login", json={"email": email, "password": password})


async def test_registration_is_limited_per_client_address(settings: Settings) -> None:
    async with (
        serve_api(isolated(settings, registration_limit_per_hour=3)) as url,
        client(url, "127.0.0.2") as crowded,
        client(url, "127.0.0.3") as other,
    ):
        for _ in range(3):
            assert (await register(crowded)).status_code == 201
        refused = assert_problem(await register(crowded), 429)
        assert "registrations" in refused["detail"]
        retry_after = int((await register(crowded)).headers["retry-after"])
        assert 3500 <= retry_after <= 3601
        # X-Forwarded-For is the client's own claim: without a trusted proxy it is ignored.
        spoofed = await register(crowded, {"X-Forwarded-For": "203.0.113.9"})
        assert_problem(spoofed, 429)
        assert (await register(other)).status_code == 201


async def test_a_trusted_proxy_forwards_the_client_address(settings: Settings) -> None:
    proxied = isolated(
        settings,
        registration_limit_per_hour=1,
        trusted_proxies=TypeAdapter(list[IPvAnyNetwork]).validate_python(["127.0.0.4/32"]),
    )
    async with serve_api(proxied) as url, client(url, "127.0.0.4") as proxy:
        first = {"X-Forwarded-For": "203.0.113.1"}
        assert (await register(proxy, first)).status_code == 201
        assert_problem(await register(proxy, first), 429)
        # Hops left of the one the proxy appended were written by the client: no escape there.
        forged = {"X-Forwarded-For": "198.51.100.7, 203.0.113.1"}
        assert_problem(await register(proxy, forged), 429)
        assert (await register(proxy, {"X-Forwarded-For": "203.0.113.2"})).status_code == 201


def test_forwarded_client_reads_the_chain_from_the_right() -> None:
    trusted = TypeAdapter(list[IPvAnyNetwork]).validate_python(["10.0.0.0/8", "fd00::/8"])
    assert forwarded_client("203.0.113.5", "1.2.3.4", trusted) == "203.0.113.5"
    assert forwarded_client("10.0.0.1", "9.9.9.9, 1.2.3.4, 10.0.0.2", trusted) == "1.2.3.4"
    assert forwarded_client("fd00::1", "2001:db8::7", trusted) == "2001:db8::7"
    assert forwarded_client("10.0.0.1", "", trusted) == "10.0.0.1"
    assert forwarded_client("10.0.0.1", "garbage, 10.0.0.3", trusted) == "10.0.0.3"


async def test_ipv6_clients_share_their_64s_budget(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url)
    limits = RateLimits(redis, f"test-ipv6-{uuid4().hex[:8]}")
    try:
        await limits.spend(registration_budget("2001:db8:1:2::1", per_hour=1))
        with pytest.raises(RateLimited):
            await limits.spend(registration_budget("2001:db8:1:2:ffff::9", per_hour=1))
        await limits.spend(registration_budget("2001:db8:1:3::1", per_hour=1))
    finally:
        await redis.aclose()


async def test_a_stranger_cannot_lock_the_owner_out(api_url: str, make_user: MakeUser) -> None:
    owner, _ = await make_user(Role.owner)
    async with client(api_url, "127.0.0.5") as stranger, client(api_url, "127.0.0.6") as home:
        for _ in range(10):
            assert (await login(stranger, owner.email, "guess-guess")).status_code == 401
        locked = assert_problem(await login(stranger, owner.email, PASSWORD), 429)
        assert "failed logins" in locked["detail"]
        assert int((await login(stranger, owner.email, PASSWORD)).headers["retry-after"]) >= 1
        # Only that pair is locked: the owner, from their own address, signs in.
        signed_in = await login(home, owner.email, PASSWORD)
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["user"]["id"] == str(owner.id)


async def test_only_failed_logins_count(api_url: str, make_user: MakeUser) -> None:
    owner, _ = await make_user(Role.owner)
    async with client(api_url, "127.0.0.7") as http:
        for _ in range(12):
            assert (await login(http, owner.email, PASSWORD)).status_code == 200
        for _ in range(9):
            assert (await login(http, owner.email, "typo-typo")).status_code == 401
        assert (await login(http, owner.email, PASSWORD)).status_code == 200
        # The success gave its place back: this is the 10th counted failure, not a lockout.
        assert (await login(http, owner.email, "typo-typo")).status_code == 401
        assert_problem(await login(http, owner.email, PASSWORD), 429)


async def test_logout_revokes_the_refresh_family(api_url: str, make_user: MakeUser) -> None:
    owner, _ = await make_user(Role.owner)
    async with client(api_url) as http:
        first = (await login(http, owner.email, PASSWORD)).json()["refresh_token"]
        other_device = (await login(http, owner.email, PASSWORD)).json()["refresh_token"]
        rotated = await http.post("/v1/auth/refresh", json={"refresh_token": first})
        current = rotated.json()["refresh_token"]

        out = await http.post("/v1/auth/logout", json={"refresh_token": current})
        assert out.status_code == 204 and out.content == b""
        for token in (current, first):
            refused = await http.post("/v1/auth/refresh", json={"refresh_token": token})
            assert_problem(refused, 401)
        # Signing out again, with any token of the family, is harmless.
        for token in (current, first):
            again = await http.post("/v1/auth/logout", json={"refresh_token": token})
            assert again.status_code == 204
        # Another sign-in is another family.
        kept = await http.post("/v1/auth/refresh", json={"refresh_token": other_device})
        assert kept.status_code == 200
        for garbage in ("nope", f"{uuid4()}.secret", first.partition(".")[0] + ".wrong"):
            unknown = await http.post("/v1/auth/logout", json={"refresh_token": garbage})
            assert_problem(unknown, 401)
        assert_problem(await http.post("/v1/auth/logout", json={}), 400)


async def test_logout_racing_a_refresh_leaves_no_live_successor(
    pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    owner, _ = await make_user(Role.owner)

    async def refresh(token: str) -> str | None:
        async with pool.acquire() as conn:
            try:
                return (await refresh_tokens.rotate(conn, token))[1]
            except InvalidRefreshToken:
                return None

    async def logout(token: str) -> None:
        async with pool.acquire() as conn:
            await refresh_tokens.revoke(conn, token)

    for _ in range(20):
        async with pool.acquire() as conn:
            token = await refresh_tokens.start_family(conn, owner.id)
        successor, _ = await asyncio.gather(refresh(token), logout(token))
        if successor is not None:
            assert await refresh(successor) is None
