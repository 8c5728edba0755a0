"""Moderators' claims on flags over real sockets against real hubs (PostgreSQL, Redis): shown to
every moderator live, refusing others' actions unless they take over (audited), renewed,
released, expiring, bounded, and ended with a moderator's last connection on any replica."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from domain.chat.claims import CLAIM_TTL, MAX_CLAIMS
from domain.identity import Role
from moderation.namespace import ModerationNamespace
from pawhub.settings import Settings
from realtime.limits import Budget, SocketLimits
from tests.conftest import start_hub
from tests.moderation_live.claims_helpers import OpenModerator, claimed_by, make_flags
from tests.recording_client import ModeratorClient


@pytest.fixture
async def second_hub_url(settings: Settings) -> AsyncIterator[str]:
    """Another hub replica sharing PostgreSQL and Redis."""
    runner, url = await start_hub(settings)
    yield url
    await runner.cleanup()


def refused(ack: dict[str, Any], code: str) -> str:
    assert ack["ok"] is False, ack
    assert ack["error"]["code"] == code, ack
    message: str = ack["error"]["message"]
    return message


async def test_a_claim_is_shown_live_and_refuses_another_moderators_act_until_taken_over(
    room: Any, pool: asyncpg.Pool, open_moderator: OpenModerator
) -> None:
    [flag_id] = await make_flags(pool, room)
    mona, mona_client = await open_moderator("Mona Moderator")
    bert, bert_client = await open_moderator("Bert Moderator")

    claimed = await mona_client.call("claim", {"flag_id": flag_id})
    assert claimed["ok"] and claimed_by(claimed["flag"]) == mona.id
    holder = claimed["flag"]["claimed_by"]
    assert holder["name"] == "Mona Moderator"
    until = datetime.fromisoformat(holder["until"])
    assert abs(until - datetime.now(UTC) - CLAIM_TTL) < timedelta(seconds=10)
    heard = await bert_client.wait_until(
        "flag_updated", lambda f: f["id"] == flag_id and f["claimed_by"] is not None
    )
    assert heard["claimed_by"] == holder
    _, late_client = await open_moderator("Late Moderator")
    [listed] = [f for f in (await late_client.call("subscribe", {}))["open"] if f["id"] == flag_id]
    assert listed["claimed_by"] == holder

    act = {"flag_id": flag_id, "action": "dismiss", "reason": "harmless"}
    conflict = await bert_client.call("act", act)
    assert "Mona Moderator" in refused(conflict, "conflict")
    assert conflict["claimed_by"] == holder
    assert "Mona Moderator" in refused(
        await bert_client.call("claim", {"flag_id": flag_id}), "conflict"
    )
    refused(await bert_client.call("release", {"flag_id": flag_id}), "conflict")
    assert await pool.fetchval("SELECT status FROM flags WHERE id = $1", UUID(flag_id)) == "open"

    taken = await bert_client.call("act", {**act, "take_over": True})
    assert taken["ok"] and taken["flag"]["status"] == "dismissed"
    assert taken["flag"]["claimed_by"] is None  # an action ends the claim
    told = await mona_client.wait_until(
        "flag_updated", lambda f: f["id"] == flag_id and f["status"] == "dismissed"
    )
    assert told["claimed_by"] is None
    action = await pool.fetchrow(
        "SELECT actor_id, action, took_over_from FROM moderation_actions WHERE flag_id = $1",
        UUID(flag_id),
    )
    assert action is not None and tuple(action) == (bert.id, "dismiss", mona.id)
    audited = await pool.fetch(
        "SELECT action FROM audit_log WHERE actor_id = $1 AND target_id = $2 ORDER BY id",
        bert.id,
        UUID(flag_id),
    )
    assert [row["action"] for row in audited] == ["moderation.take_over", "moderation.dismiss"]


async def test_claims_renew_release_once_and_refuse_what_cannot_be_claimed(
    room: Any, pool: asyncpg.Pool, open_moderator: OpenModerator
) -> None:
    flag_id, closed_id = await make_flags(pool, room, 2)
    mona, mona_client = await open_moderator("Mona Moderator")
    _, bert_client = await open_moderator("Bert Moderator")
    dismissed = {"flag_id": closed_id, "action": "dismiss", "reason": "fine"}
    assert (await mona_client.call("act", dismissed))["ok"]

    first = await mona_client.call("claim", {"flag_id": flag_id})
    await asyncio.sleep(0.05)
    renewed = await mona_client.call("claim", {"flag_id": flag_id})
    assert claimed_by(renewed["flag"]) == mona.id
    assert renewed["flag"]["claimed_by"]["until"] > first["flag"]["claimed_by"]["until"]
    released = await mona_client.call("release", {"flag_id": flag_id})
    assert released["ok"] and released["flag"]["claimed_by"] is None
    again = await mona_client.call("release", {"flag_id": flag_id})  # nothing held: no change
    assert again["ok"] and again["flag"]["claimed_by"] is None
    assert (await bert_client.call("claim", {"flag_id": flag_id}))["ok"]

    def holders() -> list[UUID | None]:
        return [claimed_by(f) for f in bert_client.received["flag_updated"] if f["id"] == flag_id]

    await bert_client.wait_until(
        "flag_updated", lambda f: f["id"] == flag_id and f["claimed_by"] is not None
    )
    await asyncio.sleep(0.2)  # the second release would have been announced before this claim
    claims = holders()
    assert claims == [mona.id, mona.id, None, claims[-1]] and claims[-1] != mona.id

    assert "dismissed" in refused(
        await mona_client.call("claim", {"flag_id": closed_id}), "conflict"
    )
    refused(await mona_client.call("claim", {"flag_id": str(room[0])}), "not_found")
    refused(await mona_client.call("claim", {"flag_id": "not-a-uuid"}), "invalid")
    refused(await mona_client.call("release", {}), "invalid")

    await pool.execute("UPDATE users SET role = 'owner' WHERE id = $1", mona.id)
    refused(await mona_client.call("release", {"flag_id": flag_id}), "forbidden")
    assert mona_client.sio.connected  # refusals never drop the connection


async def test_an_expired_claim_no_longer_holds_and_every_moderator_hears_it_end(
    room: Any, pool: asyncpg.Pool, open_moderator: OpenModerator
) -> None:
    expiring, lapsing = await make_flags(pool, room, 2)
    mona, mona_client = await open_moderator("Mona Moderator")
    _, bert_client = await open_moderator("Bert Moderator")
    for flag_id in (expiring, lapsing):
        assert (await mona_client.call("claim", {"flag_id": flag_id}))["ok"]

    # Five minutes pass for one claim: it holds no more, at once, and the sweep announces it.
    await pool.execute(
        "UPDATE flag_claims SET until = now() - interval '1 second' WHERE flag_id = $1",
        UUID(expiring),
    )
    [listed] = [f for f in (await bert_client.call("subscribe", {}))["open"] if f["id"] == expiring]
    assert listed["claimed_by"] is None
    ended = await bert_client.wait_until(
        "flag_updated", lambda f: f["id"] == expiring and f["claimed_by"] is None
    )
    assert ended["status"] == "open"
    assert not await pool.fetchval(
        "SELECT count(*) FROM flag_claims WHERE flag_id = $1", UUID(expiring)
    )
    taken = await bert_client.call("claim", {"flag_id": expiring})
    assert taken["ok"] and claimed_by(taken["flag"]) != mona.id

    # Mona's replica stops renewing her connection's lease (it died): her claims go too.
    await pool.execute(
        "UPDATE moderation_connections SET live_until = now() - interval '1 second'"
        " WHERE moderator_id = $1",
        mona.id,
    )
    await bert_client.wait_until(
        "flag_updated", lambda f: f["id"] == lapsing and f["claimed_by"] is None
    )


async def test_a_moderator_holds_a_bounded_number_of_claims(
    room: Any, pool: asyncpg.Pool, open_moderator: OpenModerator
) -> None:
    flag_ids = await make_flags(pool, room, MAX_CLAIMS + 1)
    _, client = await open_moderator()
    for flag_id in flag_ids[:MAX_CLAIMS]:
        assert (await client.call("claim", {"flag_id": flag_id}))["ok"]
    message = refused(await client.call("claim", {"flag_id": flag_ids[-1]}), "too_large")
    assert str(MAX_CLAIMS) in message
    assert (await client.call("claim", {"flag_id": flag_ids[0]}))["ok"]  # renewing is no new one
    assert (await client.call("release", {"flag_id": flag_ids[0]}))["ok"]
    assert (await client.call("claim", {"flag_id": flag_ids[-1]}))["ok"]
    held = await pool.fetchval(
        "SELECT count(*) FROM flag_claims WHERE flag_id = ANY($1::uuid[])",
        [UUID(flag_id) for flag_id in flag_ids],
    )
    assert held == MAX_CLAIMS


async def live_connections(pool: asyncpg.Pool, moderator: UUID) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM moderation_connections WHERE moderator_id = $1", moderator
    )
    return count


async def test_claims_span_replicas_and_end_with_the_moderators_last_connection(
    room: Any,
    pool: asyncpg.Pool,
    open_moderator: OpenModerator,
    make_user: Any,
    chat_url: str,
    second_hub_url: str,
) -> None:
    [flag_id] = await make_flags(pool, room)
    mona = await make_user(Role.moderator, "Mona Moderator")
    _, first_tab = await open_moderator(account=mona, url=chat_url)
    _, second_tab = await open_moderator(account=mona, url=second_hub_url)
    _, bert_client = await open_moderator("Bert Moderator", url=second_hub_url)

    assert (await first_tab.call("claim", {"flag_id": flag_id}))["ok"]  # on the first replica
    heard = await bert_client.wait_until(  # on the second one
        "flag_updated", lambda f: f["id"] == flag_id and f["claimed_by"] is not None
    )
    assert claimed_by(heard) == mona[0].id
    act = {"flag_id": flag_id, "action": "escalate", "reason": "needs a vet"}
    assert "Mona Moderator" in refused(await bert_client.call("act", act), "conflict")

    await first_tab.close()  # her other tab, on the other replica, still holds the claim
    for _ in range(200):
        if await live_connections(pool, mona[0].id) == 1:
            break
        await asyncio.sleep(0.05)
    assert await live_connections(pool, mona[0].id) == 1
    assert await pool.fetchval("SELECT count(*) FROM flag_claims WHERE flag_id = $1", UUID(flag_id))
    assert "Mona Moderator" in refused(await bert_client.call("act", act), "conflict")

    await second_tab.close()  # her last connection: the claim ends, and everyone hears it
    ended = await bert_client.wait_until(
        "flag_updated", lambda f: f["id"] == flag_id and f["claimed_by"] is None, timeout=4
    )
    assert ended["status"] == "open"
    assert await live_connections(pool, mona[0].id) == 0
    assert (await bert_client.call("act", act))["ok"]


async def test_claim_and_release_have_budgets_that_a_hubs_limits_may_set(
    settings: Settings, room: Any, pool: asyncpg.Pool, make_user: Any
) -> None:
    tight = {"/moderation": {**ModerationNamespace.budgets, "claim": Budget(2, 60)}}
    runner, url = await start_hub(settings, SocketLimits(budgets=tight))
    [flag_id] = await make_flags(pool, room)
    _, token = await make_user(Role.moderator)
    client = await ModeratorClient.connect(url, token)
    try:
        for _ in range(2):
            assert (await client.call("claim", {"flag_id": flag_id}))["ok"]
        assert "claim" in refused(await client.call("claim", {"flag_id": flag_id}), "rate_limited")
        assert (await client.call("release", {"flag_id": flag_id}))["ok"]  # its own default
    finally:
        await client.close()
        await runner.cleanup()
