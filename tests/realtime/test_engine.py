"""The hub's lean Engine.IO transport (`realtime.engine`): clients that start on long-polling
and upgrade, clients that stay on long-polling, and a client that stops reading."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from realtime import engine
from tests.recording_client import ChatClient


class PollingFirstClient(ChatClient):
    """The browsers' way in: long-polling first, then (if allowed) an upgrade to websocket."""

    @classmethod
    async def open(cls, url: str, token: str, transports: tuple[str, ...]) -> PollingFirstClient:
        client = cls()
        await client.sio.connect(
            url, auth={"token": token}, namespaces=[cls.namespace], transports=list(transports)
        )
        return client

    async def close(self) -> None:
        # A polling client that leaves still has a long-poll open, which engine.io's server
        # answers only when it times out; do not wait for it.
        await self.sio.eio.disconnect(abort=True)


@pytest.mark.parametrize("transports", [("polling", "websocket"), ("polling",)])
async def test_long_polling_clients_upgrading_or_not_get_every_message_in_order(
    room: Any, connect: Any, chat_url: str, transports: tuple[str, ...]
) -> None:
    room_id, owner, vet = room
    sender = await connect(owner[1])
    reader = await PollingFirstClient.open(chat_url, vet[1], transports)
    try:
        for client in (sender, reader):
            assert (await client.call("join", {"room": str(room_id)}))["ok"]
        for i in range(50):
            body = {"room": str(room_id), "client_id": f"p{i}", "body": f"{i}"}
            assert (await sender.call("send", body))["ok"]
        await reader.wait_for("message", 50)
        assert reader.seqs() == list(range(1, 51))
        expected = "websocket" if "websocket" in transports else "polling"
        for _ in range(100):  # the upgrade completes in the background
            if reader.sio.transport() == expected:
                break
            await asyncio.sleep(0.02)
        assert reader.sio.transport() == expected
        # Acks still reach it, whichever transport it is on.
        sent = await reader.call(
            "send", {"room": str(room_id), "client_id": "r1", "body": "from the reader"}
        )
        assert sent["ok"] and sent["message"]["seq"] == 51
    finally:
        await reader.close()


async def _stalled_member(chat_url: str, token: str, room: str) -> aiohttp.ClientWebSocketResponse:
    """A raw Engine.IO client that joins `room` over websocket and then reads nothing."""
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(f"{chat_url}/socket.io/?EIO=4&transport=websocket")
    ws._pawhub_session = session  # type: ignore[attr-defined]
    assert (await ws.receive_str()).startswith("0{")
    await ws.send_str("40/chat," + json.dumps({"token": token}))
    assert (await ws.receive_str()).startswith("40/chat,{")
    await ws.send_str("42/chat,1" + json.dumps(["join", {"room": room}]))
    assert (await ws.receive_str()).startswith("43/chat,1")
    return ws


async def test_a_client_that_stops_reading_is_cut_off_and_nobody_else_notices(
    room: Any, connect: Any, chat_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "SLOW_CONSUMER_BYTES", 256 * 1024)
    room_id, owner, vet = room
    sender, reader = await connect(owner[1]), await connect(vet[1])
    for client in (sender, reader):
        assert (await client.call("join", {"room": str(room_id)}))["ok"]
    stalled = await _stalled_member(chat_url, owner[1], str(room_id))
    sends = 2_000  # 8 MB: more than the kernel buffers on both ends hold for a non-reader
    body = "x" * 4000
    for start in range(0, sends, 100):
        acks = await asyncio.gather(
            *(
                sender.call("send", {"room": str(room_id), "client_id": f"s{i}", "body": body})
                for i in range(start, start + 100)
            )
        )
        assert all(ack["ok"] for ack in acks)
    await reader.wait_for("message", sends, timeout=60)
    assert reader.seqs() == list(range(1, sends + 1))

    # Now it reads: what the kernel held arrives, then the connection ends, short of the end.
    delivered = 0
    try:
        while (message := await stalled.receive(timeout=10)).type is aiohttp.WSMsgType.TEXT:
            delivered += message.data.startswith('42/chat,["message"')
    finally:
        await stalled.close()
        await stalled._pawhub_session.close()  # type: ignore[attr-defined]
    assert 0 < delivered < sends
    # The sender and the reader carry on as before.
    ack = await sender.call("send", {"room": str(room_id), "client_id": "after", "body": "ok"})
    assert ack["ok"] and (await reader.wait_for("message", sends + 1))[-1]["body"] == "ok"
