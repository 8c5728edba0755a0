"""What one client can make the hub's own websocket transport and front door hold or do
(`realtime.front_door`, `realtime.websocket`): endless fragments, big frames, slow and
oversized request heads, and more connections than its address may hold. Attacks go over raw
sockets against a real hub; meanwhile /healthz and another member's acks must keep answering."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pawhub.hub import build_hub_app
from pawhub.settings import Settings
from realtime.frame_reader import MAX_FRAGMENTS
from realtime.front_door import FrontDoor
from realtime.server import SOCKET_PATH, SOCKET_SERVER
from realtime.websocket import Entrance
from tests.realtime.ws_raw import (
    BINARY,
    CONTINUATION,
    MESSAGE_TOO_BIG,
    PING,
    PONG,
    TEXT,
    TIMEOUT,
    UNSUPPORTED_DATA,
    RawClient,
    client_frame,
    hub_address,
    read_http_head,
    text_frame,
)
from tests.security.bystanders import bystander, while_attacked


@contextlib.asynccontextmanager
async def raw_client(url: str) -> AsyncIterator[RawClient]:
    client = await RawClient.open(url)
    try:
        yield client
    finally:
        await client.aclose()


async def answers_ping(client: RawClient) -> bool:
    """Whether the connection is open and parsing: a ping is answered with a pong."""
    await client.write(client_frame(b"still parsing?", PING))
    pong = await client.read_frame()
    return (pong.opcode, pong.payload) == (PONG, b"still parsing?")


# endless fragments


def in_frames(count: int, first: bytes = b"6", *, final: bool) -> bytes:
    """A message of `count` frames: `first` in a text frame, then empty continuations, the
    last one final if `final`. "6" is an Engine.IO no-op."""
    continuations = [client_frame(b"", CONTINUATION, fin=False)] * (count - 1)
    if final:
        continuations[-1] = client_frame(b"", CONTINUATION)
    return b"".join([client_frame(first, TEXT, fin=False), *continuations])


async def test_30000_empty_continuations_are_refused_and_nobody_waits(
    room: Any, connect: Any, chat_url: str
) -> None:
    """The issue's freeze: no token, one text frame, then 30,000 empty continuations (180 KB)
    in one write. The connection is closed at the 1025th frame (1009)."""
    room_id, owner, _ = room
    member = await bystander(connect, owner, room_id)
    async with raw_client(chat_url) as attacker:

        async def attack() -> None:
            await attacker.write(in_frames(1 + 30_000, final=False))
            await attacker.expect_close(MESSAGE_TOO_BIG)

        await while_attacked(attack(), chat_url, member, str(room_id))


async def test_30000_continuations_in_messages_under_the_bound_cost_linear_time(
    room: Any, connect: Any, chat_url: str
) -> None:
    """The same 30,000 frames as 30 messages of 1,000 (each within the bound): all parsed
    and handed over, the connection still open, nobody waiting meanwhile."""
    room_id, owner, _ = room
    member = await bystander(connect, owner, room_id)
    async with raw_client(chat_url) as attacker:

        async def attack() -> bool:
            await attacker.write(in_frames(1_000, final=True) * 30)
            return await answers_ping(attacker)  # answered after all 30,000 frames

        assert await while_attacked(attack(), chat_url, member, str(room_id))


async def test_a_message_in_too_many_fragments_closes_only_its_connection(
    room: Any, connect: Any, chat_url: str
) -> None:
    """A member's event in MAX_FRAGMENTS frames is answered; in one more, it is refused with
    1009 and the connection closed, while the room carries on."""
    room_id, owner, vet = room
    member = await bystander(connect, owner, room_id)
    async with raw_client(chat_url) as sender:
        await sender.connect_chat(vet[1])

        def in_fragments(count: int) -> tuple[int, bytes]:
            ack_id, packet = sender.event_packet("join", {"room": str(room_id)})
            return ack_id, in_frames(count, packet.encode(), final=True)

        ack_id, allowed = in_fragments(MAX_FRAGMENTS)
        await sender.write(allowed)
        assert (await sender.ack(ack_id))["ok"] is True

        async def attack() -> None:
            await sender.write(in_fragments(MAX_FRAGMENTS + 1)[1])
            await sender.expect_close(MESSAGE_TOO_BIG)

        await while_attacked(attack(), chat_url, member, str(room_id))


# messages that are not Engine.IO


async def test_a_message_engine_io_cannot_decode_closes_its_connection_with_one_line(
    chat_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    for undecodable in ("", "x"):
        async with raw_client(chat_url) as client:
            with caplog.at_level(logging.INFO):
                caplog.clear()
                await client.write(text_frame(undecodable))
                await client.expect_close(UNSUPPORTED_DATA)
            lines = [r for r in caplog.records if r.name == "realtime.websocket"]
            assert len(lines) == 1 and lines[0].exc_info is None, lines
            assert not [r for r in caplog.records if r.exc_info], caplog.records


async def test_a_burst_of_messages_engine_io_ignores_pauses_reading_and_resumes_it(
    chat_url: str,
) -> None:
    """200 no-ops in one write stop the reading (64 wait at most) and, handled, restart it."""
    async with raw_client(chat_url) as client:
        await client.write(text_frame("6") * 200)
        assert await answers_ping(client)


# big frames


async def test_a_flood_of_1_mb_binary_frames_keeps_healthz_and_acks_answering(
    room: Any, connect: Any, chat_url: str
) -> None:
    """Binary attachments of ~1 MB (under the hub's 1,000,000-byte message bound), one after
    another as fast as they are answered: each costs the loop about a millisecond."""
    room_id, owner, vet = room
    member = await bystander(connect, owner, room_id)
    attachment = client_frame(bytes(range(256)) * 3900, BINARY)
    async with raw_client(chat_url) as flooder:
        await flooder.connect_chat(vet[1])

        async def attack() -> list[str]:
            refusals = []
            for _ in range(30):
                ack_id = flooder.new_ack_id()
                header = f'451-/chat,{ack_id}["typing",{{"_placeholder":true,"num":0}}]'
                await flooder.write(text_frame(header) + attachment)
                ack = await flooder.ack(ack_id)
                assert ack["ok"] is False, ack
                refusals.append(ack["error"]["code"])
            return refusals

        # Each megabyte arrived whole as the event's payload (not a typing payload), until
        # typing's own budget ran out.
        refusals = await while_attacked(attack(), chat_url, member, str(room_id))
        assert len(refusals) == 30 and refusals[0] == "invalid"
        assert set(refusals) <= {"invalid", "rate_limited"}


# request heads


async def refused_head(url: str, request: bytes) -> tuple[int, bytes]:
    """Send `request` (all of it or a part) and read the answer: its status and whatever
    followed it until the hub closed the connection."""
    reader, writer = await asyncio.open_connection(*hub_address(url))
    try:
        writer.write(request)
        await writer.drain()
        head = await read_http_head(reader)
        rest = await asyncio.wait_for(reader.read(), TIMEOUT)
        return head.status, rest
    finally:
        writer.close()


async def test_a_request_head_past_16_kb_is_refused_with_431(chat_url: str) -> None:
    host = f"127.0.0.1:{hub_address(chat_url)[1]}"
    padding = "x" * 17_000
    unfinished = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Padding: {padding}".encode()
    assert await refused_head(chat_url, unfinished) == (431, b"")
    whole = unfinished + b"\r\n\r\n"
    assert await refused_head(chat_url, whole) == (431, b"")
    async with aiohttp.ClientSession() as session, session.get(f"{chat_url}/healthz") as health:
        assert health.status == 200


@contextlib.asynccontextmanager
async def guarded_hub(settings: Settings, **bounds: Any) -> AsyncIterator[str]:
    """A real hub whose front door has `bounds` (fields of `Entrance`), on a port of its own."""
    runner = web.AppRunner(build_hub_app(settings.model_copy(update={"chat_rate_limit": 0})))
    await runner.setup()
    http, sio = runner.server, runner.app[SOCKET_SERVER]
    assert http is not None
    entrance = Entrance(
        path=f"/{SOCKET_PATH}/",
        max_message=sio.eio.max_http_buffer_size,
        connect=sio.eio.handle_request,
        connections=sio.websockets,
        **bounds,
    )
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: FrontDoor(http, entrance), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    finally:
        listener.close()
        await runner.cleanup()


async def test_a_slow_or_silent_request_head_is_closed_at_the_bound(settings: Settings) -> None:
    """A head trickled a byte at a time, and a connection that says nothing, are answered
    408 and closed once the head's time is up (1 s here, 10 s by default)."""
    async with guarded_hub(settings, head_timeout=1.0) as url:
        host, port = hub_address(url)
        silent_reader, silent = await asyncio.open_connection(host, port)
        reader, writer = await asyncio.open_connection(host, port)
        started = time.monotonic()

        async def trickle() -> None:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: pawhub\r\nX-Slow: " + b"z" * 100:
                writer.write(bytes((byte,)))
                await asyncio.sleep(0.1)

        trickling = asyncio.create_task(trickle())
        try:
            for stream in (reader, silent_reader):
                assert (await read_http_head(stream)).status == 408
                assert await asyncio.wait_for(stream.read(), TIMEOUT) == b""
            assert time.monotonic() - started < 3.0
            assert not trickling.done()  # closed while it was still sending its head
        finally:
            trickling.cancel()
            writer.close()
            silent.close()


# connections per address


async def test_connections_past_the_per_address_bound_are_refused_and_the_rest_work(
    settings: Settings, room: Any
) -> None:
    """Three connections from 127.0.0.1 at most: two websockets and a kept-alive HTTP one.
    A fourth is answered 503 and closed; the three keep working; once one of them (HTTP or
    websocket) is gone, a new connection is let in."""
    room_id, owner, vet = room
    async with guarded_hub(settings, max_connections_per_ip=3) as url:
        host, port = hub_address(url)
        first, second = await RawClient.open(url), await RawClient.open(url)
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
        try:
            async with http.get(f"{url}/healthz") as health:
                assert health.status == 200

            reader, writer = await asyncio.open_connection(host, port)
            assert (await read_http_head(reader)).status == 503
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
            writer.close()

            await first.connect_chat(owner[1])
            assert (await first.call("join", {"room": str(room_id)}))["ok"] is True
            async with http.get(f"{url}/healthz") as health:  # the same kept-alive connection
                assert health.status == 200

            await http.close()  # the HTTP connection's place is given back...
            third = await opened_when_let_in(url)
            await second.aclose()  # ...and a websocket's
            fourth = await opened_when_let_in(url)
            await fourth.connect_chat(vet[1])
            assert (await fourth.call("join", {"room": str(room_id)}))["ok"] is True
            await third.aclose()
            await fourth.aclose()
        finally:
            await http.close()
            await first.aclose()
            await second.aclose()


async def opened_when_let_in(url: str) -> RawClient:
    """A websocket, once the hub lets one more in (it sees a close a moment after it)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            with contextlib.suppress(AssertionError, ConnectionError, asyncio.IncompleteReadError):
                return await RawClient.open(url)
            await asyncio.sleep(0.05)
