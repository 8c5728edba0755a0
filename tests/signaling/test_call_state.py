"""The calls' and SFU claims' state in Redis, driven directly (one-key scripts, no MULTI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
import redis.asyncio as aioredis

from domain.scheduling.consults import ParticipantRole
from signaling.calls import Calls, Member
from signaling.modes import Mode
from signaling.sfu_claims import SfuClaims


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


def prefix() -> str:
    return f"test-calls-{uuid4().hex[:8]}"


def member(replica: str) -> Member:
    return Member(
        user_id=uuid4(),
        role=ParticipantRole.owner,
        name="Ann",
        admitted=True,
        replica=replica,
        sid=uuid4().hex,
    )


async def test_the_first_mode_proposed_is_the_calls(redis: aioredis.Redis) -> None:
    calls, consult = Calls(redis, prefix(), 30), uuid4()
    assert await calls.mode(consult, Mode.p2p) is Mode.p2p
    assert await calls.mode(consult, Mode.sfu) is Mode.p2p
    assert await calls.current_mode(consult) is Mode.p2p


async def test_put_lists_a_member_and_remove_takes_them_out_once(redis: aioredis.Redis) -> None:
    space, consult, ann = prefix(), uuid4(), member("replica-a")
    calls = Calls(redis, space, 30)
    await calls.put(consult, ann)
    served = f"{space}:rtc:served:replica-a"
    assert await redis.smembers(served) == {f"{consult}|{ann.user_id}".encode()}
    assert await redis.ttl(served) > 0 and await redis.ttl(f"{space}:rtc:call:{consult}") > 0
    assert await calls.remove(consult, ann.user_id) == ann
    assert await calls.remove(consult, ann.user_id) is None
    assert await calls.members(consult) == {} and await redis.smembers(served) == set()


async def test_orphan_skips_a_listed_member_not_in_the_call(redis: aioredis.Redis) -> None:
    # What a replica dying between put's two writes leaves: listed, never put.
    space, consult, user = prefix(), uuid4(), uuid4()
    await redis.sadd(f"{space}:rtc:served:dead", f"{consult}|{user}")
    calls = Calls(redis, space, 30)
    assert await calls.orphan("dead", 0) == 0
    assert await calls.member(consult, user) is None
    assert not await redis.exists(f"{space}:rtc:served:dead")


async def test_a_claim_returns_the_holder_and_pins_only_for_it(redis: aioredis.Redis) -> None:
    space, consult = prefix(), uuid4()
    first, second = SfuClaims(redis, space, "replica-a"), SfuClaims(redis, space, "replica-b")
    assert await first.claim(consult) == "replica-a"
    assert await second.claim(consult) == "replica-a"
    assert await first.claim(consult) == "replica-a"
    assert await redis.smembers(f"{space}:rtc:pinned:replica-a") == {str(consult).encode()}
    assert await redis.ttl(f"{space}:rtc:pinned:replica-a") > 0
    assert not await redis.exists(f"{space}:rtc:pinned:replica-b")
    assert await second.release("replica-a") == [consult]
    assert await second.claim(consult) == "replica-b"
    assert await second.host_of(consult) == "replica-b"
    assert await redis.smembers(f"{space}:rtc:pinned:replica-b") == {str(consult).encode()}
