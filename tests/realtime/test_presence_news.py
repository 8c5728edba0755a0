"""Presence changes are announced in batches: held up to ANNOUNCE_DELAY_S, then written
together, in order; MAX_WAITING bounds how many wait."""

from __future__ import annotations

from typing import Any
from uuid import UUID

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
        assert (await alices.call("join", {"room": room}))["ok"]  # 1 waiting
        assert (await bobs.call("join", {"room": room}))["ok"]  # 2 waiting: the bound
        assert (await carols.call("join", {"room": room}))["ok"]  # 1 waiting

        # The bound's batch, long before the window, each arrival skipping its own connection:
        # Alice's reaches Bob, who joined while it waited (it agrees with his join's `online`).
        assert await alices.wait_for("presence", 1) == [online(bob)]
        assert await bobs.wait_for("presence", 1) == [online(alice)]
        await bobs.call("send", {"room": room, "client_id": "b", "body": "hi"})
        for client in (alices, bobs, carols):
            await client.wait_for("message", 1)
        # Carol's arrival waits for the window: nobody has it yet.
        assert alices.received["presence"] == [online(bob)]
        assert bobs.received["presence"] == [online(alice)]
        assert carols.received["presence"] == []


async def test_an_announcement_that_fails_does_not_hold_back_the_rest_of_its_batch(
    settings: Settings, pool: asyncpg.Pool, room: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    room_id, owner, vet = room
    monkeypatch.setattr(presence_news, "ANNOUNCE_DELAY_S", 600.0)
    monkeypatch.setattr(presence_news, "MAX_WAITING", 2)  # the two arrivals: one batch
    publish = RoomFanout.publish

    async def failing_for_the_owner(
        fanout: RoomFanout, room: UUID, event: str, data: Any, **kw: Any
    ) -> None:
        if event == "presence" and data["user_id"] == str(owner[0].id):
            raise RuntimeError("the owner's announcement fails")
        await publish(fanout, room, event, data, **kw)

    monkeypatch.setattr(RoomFanout, "publish", failing_for_the_owner)
    async with replicas(settings, count=1) as (hub,), clients() as connect:
        owners, vets = await connect(hub, owner[1]), await connect(hub, vet[1])
        assert (await owners.call("join", {"room": str(room_id)}))["ok"]
        assert (await vets.call("join", {"room": str(room_id)}))["ok"]
        [arrival] = await owners.wait_for("presence", 1)  # after the owner's, which failed
        assert arrival == {"room": str(room_id), "user_id": str(vet[0].id), "online": True}
