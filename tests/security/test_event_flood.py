"""What one connection can make the hub's Socket.IO layer hold or do
(`realtime.socket_server`): events in flight, namespace-less sessions, binary attachments,
reserved event names and malformed packets. Attacks go over raw websockets against a real hub;
another member's acks and /healthz must keep answering."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pawhub.settings import Settings
from realtime import socket_server
from realtime.server import SOCKET_SERVER
from realtime.socket_server import EVENTS_IN_FLIGHT, PUSH_LIMIT, HubSocketServer
from tests.conftest import start_hub
from tests.recording_client import ChatClient
from tests.security.bystanders import ANSWERED_WITHIN_S, Bystanders


class RawClient:
    """A Socket.IO client on a bare websocket: sends exactly the packets it is told to."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session, self.ws = session, ws
        self.packets: list[str | bytes] = []
        self.closed = asyncio.get_running_loop().create_future()
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> RawClient:
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket")
        client = cls(session, ws)
        await client.expect(lambda packet: packet.startswith("0{"))
        return client

    async def _read(self) -> None:
        async for message in self.ws:
            if message.data == "2":
                await self.ws.send_str("3")
            elif message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                self.packets.append(message.data)
                self._arrived.set()
        self.closed.set_result(time.monotonic())

    async def expect(self, matches: Callable[[str], bool], timeout: float = 5) -> str:
        async with asyncio.timeout(timeout):
            while True:
                found = next((p for p in self.packets if isinstance(p, str) and matches(p)), None)
                if found is not None:
                    return found
                self._arrived.clear()
                await self._arrived.wait()

    async def send(self, packet: str | bytes) -> None:
        if isinstance(packet, bytes):
            await self.ws.send_bytes(packet)
        else:
            await self.ws.send_str(packet)

    async def connect_chat(self, token: str) -> None:
        await self.send("40/chat," + json.dumps({"token": token}))
        await self.expect(lambda packet: packet.startswith("40/chat,{"))

    async def call(self, ack_id: int, event: str, payload: Any = None) -> Any:
        arguments = [event] if payload is None else [event, payload]
        await self.send(f"42/chat,{ack_id}" + json.dumps(arguments))
        prefix = f"43/chat,{ack_id}["
        return json.loads((await self.expect(lambda p: p.startswith(prefix)))[len(prefix) - 1 :])[0]

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self.session.close()


Opener = Callable[[], Awaitable[RawClient]]


@contextlib.asynccontextmanager
async def raw_clients(url: str) -> AsyncIterator[Opener]:
    """Opens raw clients on the hub at `url`, and closes them all at the end."""
    clients: list[RawClient] = []

    async def open_client() -> RawClient:
        clients.append(await RawClient.open(url))
        return clients[-1]

    try:
        yield open_client
    finally:
        for client in clients:
            await client.close()


@pytest.fixture
async def raw(chat_url: str) -> AsyncIterator[Opener]:
    async with raw_clients(chat_url) as open_client:
        yield open_client


@pytest.fixture
async def impatient(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Opener]:
    """Raw clients on a hub of their own whose sessions must connect a namespace in 0.5 s."""
    monkeypatch.setattr(socket_server, "NAMESPACE_TIMEOUT_S", 0.5)
    async with hub(settings) as (_, url), raw_clients(url) as open_client:
        yield open_client


@contextlib.asynccontextmanager
async def hub(settings: Settings) -> AsyncIterator[tuple[web.AppRunner, str]]:
    """A hub of the test's own, started after the test patched what it needed."""
    runner, url = await start_hub(settings.model_copy(update={"chat_rate_limit": 0}))
    try:
        yield runner, url
    finally:
        await runner.cleanup()


async def flood_history(client: RawClient, room: str, events: int) -> None:
    packet = json.dumps(["history", {"room": room}])
    with contextlib.suppress(ConnectionError):
        for ack_id in range(1000, 1000 + events):
            await client.send(f"42/chat,{ack_id}{packet}")


def acks_of(client: RawClient) -> int:
    return sum(isinstance(p, str) and p.startswith("43/chat,") for p in client.packets)


# events in flight


async def test_a_member_pushing_20000_history_events_is_disconnected_and_others_carry_on(
    room: Any, connect: Any, raw: Any, chat_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    room_id, owner, vet = room
    member = await connect(vet[1])
    assert (await member.call("join", {"room": str(room_id)}))["ok"]
    flooder = await raw()
    await flooder.connect_chat(owner[1])
    bystanders = Bystanders(chat_url, member, str(room_id))
    with caplog.at_level(logging.INFO, logger="realtime.socket_server"):
        async with bystanders.watching():
            await flood_history(flooder, str(room_id), 20_000)
            async with asyncio.timeout(10):
                await asyncio.shield(flooder.closed)
    # It got answers for what it had running, the event that found them all busy and what it
    # pushed past them, not 20,000.
    assert 0 < acks_of(flooder) <= EVENTS_IN_FLIGHT + 1 + PUSH_LIMIT
    # An Engine.IO close, then the websocket's.
    assert flooder.packets[-1] == "1", flooder.packets[-3:]
    dropped = [r for r in caplog.records if "events pushed past" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].exc_info is None


async def test_past_16_events_in_flight_a_connection_waits_and_is_answered_in_turn(
    room: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate alone (no disconnect): never more than 16 handlers of the flooder at once,
    every one of its events answered, and the others answered meanwhile."""
    monkeypatch.setattr(socket_server, "PUSH_LIMIT", 1_000_000)
    room_id, owner, vet = room
    async with hub(settings) as (runner, url):
        server: HubSocketServer = runner.app[SOCKET_SERVER]
        member = await ChatClient.connect(url, vet[1])
        flooder = await RawClient.open(url)
        try:
            assert (await member.call("join", {"room": str(room_id)}))["ok"]
            await flooder.connect_chat(owner[1])
            most_running = 0

            async def sample() -> None:
                nonlocal most_running
                while True:
                    running = [slots.running for slots in server._slots.values()]
                    most_running = max(most_running, *running, 0)
                    await asyncio.sleep(0)

            sampler = asyncio.create_task(sample())
            events = 2_000
            async with Bystanders(url, member, str(room_id)).watching():
                await flood_history(flooder, str(room_id), events)
                async with asyncio.timeout(60):
                    while acks_of(flooder) < events:
                        await asyncio.sleep(0.05)
            sampler.cancel()
            assert most_running == EVENTS_IN_FLIGHT
            assert acks_of(flooder) == events and not flooder.closed.done()
        finally:
            await flooder.close()
            await member.close()


# sessions without a namespace


async def test_a_session_that_connects_no_namespace_is_closed_after_the_bound(
    room: Any, impatient: Opener
) -> None:
    _, owner, _ = room
    idle, refused, member = [await impatient() for _ in range(3)]
    opened = time.monotonic()
    await refused.send("40/chat," + json.dumps({"token": "forged"}))
    await refused.expect(lambda packet: packet.startswith("44/chat,"))
    await member.connect_chat(owner[1])
    async with asyncio.timeout(5):
        for client in (idle, refused):
            await asyncio.shield(client.closed)
            assert client.packets[-1] == "1"  # Engine.IO's close, before the socket's
    assert idle.closed.result() - opened < 3
    # A connected member is not affected, however long it stays.
    await asyncio.sleep(1)
    assert not member.closed.done()
    assert (await member.call(1, "join", {"room": "not-a-uuid"}))["ok"] is False


async def test_a_session_whose_last_namespace_left_must_connect_another(
    room: Any, impatient: Opener
) -> None:
    _, owner, _ = room
    leaving, returning = await impatient(), await impatient()
    for client in (leaving, returning):
        await client.connect_chat(owner[1])
        await client.send("41/chat,")  # the client leaves the namespace
    await returning.connect_chat(owner[1])  # ... and this one comes back in time
    async with asyncio.timeout(5):
        await asyncio.shield(leaving.closed)
    await asyncio.sleep(0.7)
    assert not returning.closed.done()


# attachments


async def test_a_packet_announcing_999999999_attachments_is_refused_at_once(
    room: Any, connect: Any, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    room_id, owner, vet = room
    member = await connect(vet[1])
    attacker = await raw()
    await attacker.connect_chat(owner[1])
    announced = '45999999999-/chat,1["send",{"_placeholder":true,"num":0}]'
    with caplog.at_level(logging.INFO, logger="realtime.socket_server"):
        sent = time.monotonic()
        await attacker.send(announced)
        async with asyncio.timeout(ANSWERED_WITHIN_S):
            closed = await asyncio.shield(attacker.closed)
    assert closed - sent < ANSWERED_WITHIN_S
    lines = [r for r in caplog.records if "999999999 attachments" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    ack = await member.call("join", {"room": str(room_id)})
    assert ack["ok"]


async def test_attachments_past_the_largest_message_are_refused(
    room: Any, connect: Any, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, owner, _ = room
    attacker = await raw()
    await attacker.connect_chat(owner[1])
    placeholders = [{"_placeholder": True, "num": n} for n in range(3)]
    await attacker.send("453-/chat,1" + json.dumps(["send", *placeholders]))
    with caplog.at_level(logging.INFO, logger="realtime.socket_server"):
        for _ in range(2):  # 2 x 600 KB: each message fits, together they do not
            with contextlib.suppress(ConnectionError):
                await attacker.send(b"\x04" + bytes(600_000))
        async with asyncio.timeout(5):
            await asyncio.shield(attacker.closed)
    assert any("attachments past 1000000 bytes" in r.getMessage() for r in caplog.records)


# reserved event names and malformed packets


async def test_client_emitted_connect_and_disconnect_reach_no_lifecycle_handler(
    room: Any, connect: Any, raw: Any
) -> None:
    room_id, owner, vet = room
    member = await connect(vet[1])
    client = await raw()
    await client.connect_chat(owner[1])
    assert (await client.call(1, "join", {"room": str(room_id)}))["ok"]
    assert (await member.call("join", {"room": str(room_id)}))["ok"]

    refused = await client.call(2, "disconnect")
    assert refused["ok"] is False and refused["error"]["code"] == "invalid"
    await client.send('42/chat,["disconnect"]')  # no ack asked: ignored
    refused = await client.call(3, "connect", {"token": "forged"})
    assert refused["ok"] is False and refused["error"]["code"] == "invalid"

    # Still connected, still a member of the room, still who it was.
    sent = await member.call("send", {"room": str(room_id), "client_id": "m1", "body": "hi"})
    assert sent["ok"]
    await client.expect(lambda p: p.startswith('42/chat,["message"') and '"m1"' in p)
    own = await client.call(4, "send", {"room": str(room_id), "client_id": "c1", "body": "yo"})
    assert own["ok"] and own["message"]["sender"]["id"] == str(owner[0].id)
    assert not any('"online":false' in str(p) for p in member.received["presence"])
    assert not client.closed.done()


MALFORMED = {
    "bad JSON": '42/chat,7["send",{',
    "event without a name": "42/chat,7[]",
    "event named by a number": "42/chat,7[12]",
    "event that is no list": '42/chat,7{"send":1}',
    "unknown packet type": "49/chat,[]",
    "connect error from a client": '44/chat,{"message":"x"}',
    "ack without arguments": "43/chat,7",
    "id too long": "42/chat," + "7" * 120 + '["send"]',
    "attachment nobody announced": b"\x04\x00\x01",
}


@pytest.mark.parametrize("packet", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_packet_leaves_one_log_line_and_others_unaffected(
    room: Any, connect: Any, raw: Any, caplog: pytest.LogCaptureFixture, packet: str | bytes
) -> None:
    room_id, owner, vet = room
    member = await connect(vet[1])
    assert (await member.call("join", {"room": str(room_id)}))["ok"]
    offender = await raw()
    await offender.connect_chat(owner[1])
    with caplog.at_level(logging.INFO):
        caplog.clear()
        await offender.send(packet)
        async with asyncio.timeout(5):
            await asyncio.shield(offender.closed)
        sent = await member.call("send", {"room": str(room_id), "client_id": "ok", "body": "."})
    assert sent["ok"]
    lines = [r for r in caplog.records if r.name == "realtime.socket_server"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].exc_info is None and lines[0].levelno == logging.INFO
    assert not any(r.exc_info for r in caplog.records)
