"""The send rate limit: a burst of 20 messages in 10 s per user, then `rate_limited`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pawhub.settings import Settings
from tests.conftest import start_hub
from tests.recording_client import ChatClient


@pytest.fixture
async def limited_hub(settings: Settings) -> AsyncIterator[str]:
    runner, url = await start_hub(settings.model_copy(update={"chat_rate_limit": 20}))
    yield url
    await runner.cleanup()


async def test_the_21st_message_in_a_burst_is_refused_and_the_room_is_untouched(
    room: Any, limited_hub: str
) -> None:
    room_id, owner, vet = room
    alice = await ChatClient.connect(limited_hub, owner[1])
    bob = await ChatClient.connect(limited_hub, vet[1])
    try:
        await bob.call("join", {"room": str(room_id)})
        acks = [
            await alice.call("send", {"room": str(room_id), "client_id": f"m{i}", "body": "spam"})
            for i in range(21)
        ]
        assert all(ack["ok"] for ack in acks[:20])
        assert acks[20]["ok"] is False and acks[20]["error"]["code"] == "rate_limited"
        await bob.wait_for("message", 20)
        assert bob.seqs() == list(range(1, 21))
        # The limited sender is still connected, and others may still send.
        assert (await bob.call("send", {"room": str(room_id), "client_id": "b", "body": "fine"}))[
            "ok"
        ]
        assert alice.sio.connected
    finally:
        await alice.close()
        await bob.close()
