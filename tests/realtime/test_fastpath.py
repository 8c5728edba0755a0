"""The broadcast fast path keeps a room's recipients between messages: they follow whoever
enters or leaves the room, and an emit that skips its sender still skips it."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from domain.chat.conversations import create_conversation
from domain.identity import Role
from pawhub.settings import Settings
from tests.conftest import start_hub
from tests.realtime.replicas import send
from tests.recording_client import ChatClient


def bodies(client: ChatClient) -> list[str]:
    return [message["body"] for message in client.received["message"]]


async def test_a_rooms_kept_recipients_follow_who_enters_and_leaves(
    settings: Settings, pool: asyncpg.Pool, make_user: Any
) -> None:
    owner, vet, nurse = await make_user(Role.owner), await make_user(Role.vet), await make_user()
    async with pool.acquire() as conn:
        room = (await create_conversation(conn, owner[0].id, [vet[0].id, nurse[0].id], "Rex")).id
    runner, url = await start_hub(settings.model_copy(update={"chat_rate_limit": 0}))
    alice, bob, carol = [await ChatClient.connect(url, user[1]) for user in (owner, vet, nurse)]
    try:
        for client in (alice, bob):
            assert (await client.call("join", {"room": str(room)}))["ok"]
        await send(alice, room, "1", "first")  # the room's recipients are kept from here on
        await bob.wait_for("message", 1)

        assert (await carol.call("join", {"room": str(room)}))["ok"]
        await send(alice, room, "2", "second")
        assert [m["body"] for m in await carol.wait_for("message", 1)] == ["second"]

        assert (await bob.call("leave", {"room": str(room)}))["ok"]
        await send(alice, room, "3", "third")
        await carol.wait_for("message", 2)
        await alice.wait_for("message", 3)
        assert (await alice.call("typing", {"room": str(room), "typing": True}))["ok"]
        await carol.wait_for("typing", 1)
        await asyncio.sleep(0.2)  # what bob or alice would get was written with carol's
        assert bodies(alice) == ["first", "second", "third"]
        assert bodies(bob) == ["first", "second"]
        assert bodies(carol) == ["second", "third"]
        assert alice.received["typing"] == bob.received["typing"] == []
    finally:
        for client in (alice, bob, carol):
            await client.close()
        await runner.cleanup()
