"""Presence changes are announced in batches: held up to ANNOUNCE_DELAY_S, then written
together, in order; MAX_WAITING bounds how many wait."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from domain.chat.conversations import create_conversation
from domain.identity import Role
from pawhub.settings import Settings
from realtime import presence_news
from realtime.fanout import RoomFanout
from tests.realtime.replicas import clients, replicas


async def test_changes_wait_for_the_window_and_go_out_together_past_the_bound(
    settings: Settings, pool: asyncpg.Pool, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A window longer than the test: only the bound can send these.
    monkeypatch.setattr(presence_news, "ANNOUNCE_DELAY_S", 600.0)
    monkeypatch.setattr(presence_news, "MAX_WAITING", 2)
    alice, bob, carol = [await make_user(Role.owner, name) for name in ("Al", "Bo", "Cy")]
    async with pool.acquire() as conn:
        conversation = await create_conversation(conn, alice[0].id, [bob[0].id, carol[0].id], "R")
    room = str(conversation.id)

    def online(member: Any) -> dict[str, Any]:
        return {"room": room, "user_id": str(member[0].id), "online": True}

    async with replicas(settings, count=1) as (hub,), clients() as connect:
        alices, bobs, carols = [await connect(hub, member[1]) for member in (alice, bob, carol)]
        assert (await alices.call("join", {"room": room}))["ok"]  # alone: nobody to tell
        assert (await bobs.call("join", {"room": room}))["ok"]  # 1 waiting
        assert (await carols.call("join", {"room": room}))["ok"]  # 2 waiting: the bound

        # The bound's batch, long before the window, each arrival skipping its own connection:
        # Bob's reaches Carol, who joined while it waited (it agrees with her join's `online`).
        assert await alices.wait_for("presence", 2) == [online(bob), online(carol)]
        assert await bobs.wait_for("presence", 1) == [online(carol)]
        assert await carols.wait_for("presence", 1) == [online(bob)]
        assert (await bobs.call("leave", {"room": room}))["ok"]  # 1 waiting
        await carols.call("send", {"room": room, "client_id": "c", "body": "hi"})
        for client in (alices, carols):
            await client.wait_for("message", 1)
        # Bob's departure waits for the window: nobody has it yet.
        assert alices.received["presence"] == [online(bob), online(carol)]
        assert carols.received["presence"] == [online(bob)]


async def test_an_announcement_that_fails_does_not_hold_back_the_rest_of_its_batch(
    settings: Settings, pool: asyncpg.Pool, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presence_news, "ANNOUNCE_DELAY_S", 600.0)
    monkeypatch.setattr(presence_news, "MAX_WAITING", 2)  # Bob's and Carol's arrivals: one batch
    alice, bob, carol = [await make_user(Role.owner, name) for name in ("Al", "Bo", "Cy")]
    async with pool.acquire() as conn:
        conversation = await create_conversation(conn, alice[0].id, [bob[0].id, carol[0].id], "R")
    room = str(conversation.id)
    publish = RoomFanout.publish

    async def failing_for_bob(
        fanout: RoomFanout, room: UUID, event: str, data: Any, **kw: Any
    ) -> None:
        if event == "presence" and data["user_id"] == str(bob[0].id):
            raise RuntimeError("Bob's announcement fails")
        await publish(fanout, room, event, data, **kw)

    monkeypatch.setattr(RoomFanout, "publish", failing_for_bob)
    async with replicas(settings, count=1) as (hub,), clients() as connect:
        alices, bobs, carols = [await connect(hub, member[1]) for member in (alice, bob, carol)]
        for client in (alices, bobs, carols):  # Alice's, alone in the room, is told to nobody
            assert (await client.call("join", {"room": room}))["ok"]
        [arrival] = await alices.wait_for("presence", 1)  # after Bob's, which failed
        assert arrival == {"room": room, "user_id": str(carol[0].id), "online": True}


async def test_a_departure_overtaken_by_a_return_on_another_replica_is_not_announced(
    settings: Settings, pool: asyncpg.Pool, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pat leaves replica B and comes back on A. A's batch goes out first (filled by Quinn's and
    Rae's arrivals), B's later (filled by Sam's): B's news of Pat leaving is stale by then."""
    monkeypatch.setattr(presence_news, "ANNOUNCE_DELAY_S", 600.0)
    monkeypatch.setattr(presence_news, "MAX_WAITING", 3)
    mia, pat, quinn, rae, sam = [
        await make_user(Role.owner, name) for name in ("Mia", "Pat", "Quinn", "Rae", "Sam")
    ]
    async with pool.acquire() as conn:
        others = [member[0].id for member in (pat, quinn, rae, sam)]
        conversation = await create_conversation(conn, mia[0].id, others, "R")
    room = str(conversation.id)

    def told(member: Any, online: bool) -> dict[str, Any]:
        return {"room": room, "user_id": str(member[0].id), "online": online}

    async with replicas(settings) as (a, b), clients() as connect:
        mias = await connect(b, mia[1])
        assert (await mias.call("join", {"room": room}))["ok"]  # alone: nobody to tell
        pats_first = await connect(b, pat[1])
        assert (await pats_first.call("join", {"room": room}))["ok"]  # B waits: Pat +
        assert (await pats_first.call("leave", {"room": room}))["ok"]  # B waits: Pat +, Pat -
        for member in (pat, quinn, rae):  # A: Pat +, Quinn +, Rae +: the bound, out at once
            assert (await (await connect(a, member[1])).call("join", {"room": room}))["ok"]
        await mias.wait_for("presence", 3)
        assert (await (await connect(b, sam[1])).call("join", {"room": room}))["ok"]  # B's bound

        await mias.wait_for("presence", 5)
        await asyncio.sleep(0.2)  # what else B's batch held had time to arrive
        assert mias.received["presence"] == [
            *(told(member, True) for member in (pat, quinn, rae)),
            told(pat, True),  # B's, from before Pat left
            told(sam, True),
        ]


class _Published:
    """Where a PresenceNews of this test announces: the announcements, kept."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def publish(self, room: UUID, event: str, data: Any, **_: Any) -> None:
        self.events.append(data)


async def test_a_stop_as_a_batch_fills_is_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stop's cancellation lands just as the filling change wakes the batch. asyncio.wait_for
    on Python 3.11 returned the wake-up instead: the stop was lost, the change told after it was
    announced too, and the next batch held the stop for a whole window."""
    monkeypatch.setattr(presence_news, "ANNOUNCE_DELAY_S", 600.0)
    monkeypatch.setattr(presence_news, "MAX_WAITING", 2)
    published = _Published()

    async def nobody_back(pairs: Any) -> list[bool]:
        return [False] * len(pairs)

    news = presence_news.PresenceNews(published, nobody_back)  # type: ignore[arg-type]
    room, users = uuid4(), [uuid4() for _ in range(3)]
    news.tell(room, users[0], True)
    await asyncio.sleep(0)  # the batch waits
    news.tell(room, users[1], True)  # the bound: the batch wakes and goes out
    await asyncio.sleep(0)
    news.tell(room, users[2], False)  # waits for the next batch, which the stop drops
    async with asyncio.timeout(5):  # a lost cancellation holds it for ANNOUNCE_DELAY_S
        await news.stop()
    told = [{"room": str(room), "user_id": str(user), "online": True} for user in users[:2]]
    assert published.events == told
