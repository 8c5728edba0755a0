"""FANOUT_WRITE_DELAY_MS: a room's messages emitted within the delay share each recipient's
write (one system call for all of them), and still arrive, all and in order. Without a delay
each message is written at the end of its own tick."""

from __future__ import annotations

from typing import Any

import pytest

from pawhub.settings import Settings
from realtime.engine import DirectQueue
from tests.conftest import start_hub
from tests.recording_client import ChatClient

MESSAGES = 5


# 2 s, past the setting's bound of 20 ms, so that the five sends fall in one window even on a
# loaded machine.
@pytest.mark.parametrize("delay_ms", [0, 2000])
async def test_messages_within_the_write_delay_share_each_recipients_write(
    settings: Settings, room: Any, monkeypatch: pytest.MonkeyPatch, delay_ms: int
) -> None:
    writes: list[bytes] = []
    write_frames = DirectQueue.write_frames

    def counted(queue: DirectQueue, frames: bytes, packets: Any) -> None:
        writes.append(frames)
        write_frames(queue, frames, packets)

    monkeypatch.setattr(DirectQueue, "write_frames", counted)
    own = settings.model_copy(update={"chat_rate_limit": 0, "fanout_write_delay_ms": delay_ms})
    runner, url = await start_hub(own)
    room_id, owner, vet = room
    alice = await ChatClient.connect(url, owner[1])
    bob = await ChatClient.connect(url, vet[1])
    try:
        for client in (alice, bob):
            assert (await client.call("join", {"room": str(room_id)}))["ok"]
        writes.clear()
        for index in range(MESSAGES):  # one after another: each in a tick of its own
            body = {"room": str(room_id), "client_id": f"c{index}", "body": f"hi {index}"}
            assert (await alice.call("send", body))["ok"]
        received = await bob.wait_for("message", MESSAGES)
        assert [message["body"] for message in received] == [f"hi {i}" for i in range(MESSAGES)]
        carrying = [frames for frames in writes if b'"message"' in frames]
        if delay_ms:  # all within the delay: one write per recipient
            assert len(carrying) <= 2, len(carrying)
        else:
            assert len(carrying) >= MESSAGES, len(carrying)
    finally:
        await alice.close()
        await bob.close()
        await runner.cleanup()
