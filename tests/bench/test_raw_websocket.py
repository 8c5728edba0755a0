"""The load tester's own websocket client (`bench.chat.raw_websocket`) against aiohttp's
websocket server, a maintained implementation: messages of every length class (7-bit, 16-bit
and 64-bit lengths) both ways, a fragmented message, the server's ping answered, the server's
close echoed, and a server that does not switch protocols refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import WSMsgType, web

from bench.chat.raw_websocket import RawWebSocket, WebSocketClosed
from deploy.embedded import free_port

LENGTHS = (0, 1, 125, 126, 65_535, 65_536, 300_000)


async def _echo(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse(autoping=False, max_msg_size=0)
    await ws.prepare(request)
    async for message in ws:
        if message.type is WSMsgType.PONG:
            await ws.send_str(f"pong:{message.data.decode()}")
        elif message.data == "ping me":
            await ws.ping(b"hello")
        elif message.data == "fragments":  # a text frame without FIN, then its continuation
            assert request.transport is not None
            request.transport.write(bytes((0x01, 4)) + b"frag" + bytes((0x80, 5)) + b"ments")
        elif message.data == "close me":
            await ws.close(code=4000, message=b"bye")
        else:
            await ws.send_str(message.data)
    return ws


async def _plain(_: web.Request) -> web.Response:
    return web.Response(text="no")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/ws", _echo)
    app.router.add_get("/plain", _plain)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_messages_of_every_length_class_go_both_ways(server: str) -> None:
    ws = await RawWebSocket.connect(f"{server}/ws")
    for length in LENGTHS:
        text = ("é" if length % 2 else "a") * length
        ws.send_str(text)
        assert await asyncio.wait_for(ws.receive_str(), 10) == text
    ws.close()


async def test_fragments_pings_and_close(server: str) -> None:
    ws = await RawWebSocket.connect(f"{server}/ws")
    ws.send_str("fragments")
    assert await asyncio.wait_for(ws.receive_str(), 10) == "fragments"
    ws.send_str("ping me")
    assert await asyncio.wait_for(ws.receive_str(), 10) == "pong:hello"
    ws.send_str("close me")
    with pytest.raises(WebSocketClosed):
        await asyncio.wait_for(ws.receive_str(), 10)
    assert ws.closed
    with pytest.raises(WebSocketClosed):
        ws.send_str("after the close")


async def test_a_server_that_does_not_switch_protocols_is_refused(server: str) -> None:
    with pytest.raises(WebSocketClosed, match="did not switch"):
        await RawWebSocket.connect(f"{server}/plain")
