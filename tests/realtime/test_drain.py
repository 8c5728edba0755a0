"""A hub draining (`realtime.drain`), in process: /healthz reports it first; then new
connections, new sessions and new events are refused while the sessions open here are still
served; a send already running finishes and is acknowledged before the transport drops; the
client, told by a dropped transport rather than a disconnect, reconnects by itself; a handler
still running at the deadline is cancelled. Sends are held mid-flight by a real row lock on
their conversation in PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg
import pytest
import socketio

from pawhub.settings import Settings
from realtime.drain import DRAINING, Drain, DrainPhase, close_transports, drain
from realtime.server import SOCKET_SERVER
from realtime.socket_server import HubSocketServer
from tests.conftest import start_hub
from tests.recording_client import ChatClient

UNAVAILABLE = "unavailable"
SOCKETS = "/socket.io/"


@contextlib.asynccontextmanager
async def own_hub(settings: Settings) -> AsyncIterator[tuple[HubSocketServer, str]]:
    runner, url = await start_hub(settings.model_copy(update={"chat_rate_limit": 0}))
    try:
        yield runner.app[SOCKET_SERVER], url
    finally:
        await runner.cleanup()


async def get(url: str) -> tuple[int, Any]:
    """Status and JSON body of a GET on a connection of its own."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json(content_type=None)


class KeptAlive:
    """One HTTP/1.1 connection kept open across requests, as a balancer's to its upstream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> KeptAlive:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def get(self, target: str) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: hub\r\n\r\n".encode())
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        status_line, *lines = head.decode("latin-1").strip().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        body = await self.reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), headers, body

    def close(self) -> None:
        self.writer.close()


async def stored(pool: asyncpg.Pool, room: UUID, client_id: str) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM messages WHERE room = $1 AND client_id = $2", room, client_id
        )
    )


@contextlib.asynccontextmanager
async def sends_held(pool: asyncpg.Pool, room: UUID) -> AsyncIterator[None]:
    """Sends to `room` wait in PostgreSQL (a row lock on the conversation) until the end."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", room)
        yield


async def until_a_send_waits(pool: asyncpg.Pool) -> None:
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with asyncio.timeout(5):
        while not await pool.fetchval(query):
            await asyncio.sleep(0.02)


def send(room: UUID, client_id: str) -> dict[str, str]:
    return {"room": str(room), "client_id": client_id, "body": f"drain {client_id}"}


async def test_a_draining_hub_reports_it_then_refuses_what_is_new_but_serves_open_sessions(
    settings: Settings, room: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, vet = room
    async with own_hub(settings) as (sio, url), aiohttp.ClientSession() as polling:
        member = await ChatClient.connect(url, owner[1])
        balancer = await KeptAlive.open(url)
        try:
            assert (await member.call("join", {"room": str(room_id)}))["ok"]
            assert (await balancer.get("/healthz"))[0] == 200
            # A long-polling session opened before the drain, connected to /chat.
            async with polling.get(f"{url}/socket.io/?EIO=4&transport=polling") as opened:
                session = f"{url}/socket.io/?EIO=4&transport=polling&sid="
                session += json.loads((await opened.text())[1:])["sid"]
            connect = "40/chat," + json.dumps({"token": vet[1]})
            async with polling.post(session, data=connect) as posted:
                assert posted.status == 200
            async with polling.get(session) as connected:
                assert (await connected.text()).startswith("40/chat,{")

            sio.drain.phase = DrainPhase.NOTICE
            assert await get(f"{url}/healthz") == (503, DRAINING)
            assert (await balancer.get("/healthz"))[0] == 503
            late = await ChatClient.connect(url, vet[1])  # accepted while balancers take note
            await late.close()

            sio.drain.phase = DrainPhase.REFUSING
            assert await get(f"{url}/healthz") == (503, DRAINING)  # at the front door
            with pytest.raises(socketio.exceptions.ConnectionError):
                await ChatClient.connect(url, vet[1])
            status, headers, body = await balancer.get("/socket.io/?EIO=4&transport=polling")
            assert (status, json.loads(body)) == (503, DRAINING)  # past the front door
            assert headers["content-type"].startswith("application/json")

            ack = await member.call("send", send(room_id, "refused-websocket"))
            assert ack["ok"] is False and ack["error"]["code"] == UNAVAILABLE
            event = '42/chat,7["send",' + json.dumps(send(room_id, "refused-polling")) + "]"
            async with polling.post(session, data=event) as posted:
                assert posted.status == 200  # the open session is still served
            async with polling.get(session) as answered:
                acked = (await answered.text()).removeprefix("43/chat,7")
            assert json.loads(acked)[0]["error"]["code"] == UNAVAILABLE
            assert await stored(pool, room_id, "refused-websocket") == 0
            assert await stored(pool, room_id, "refused-polling") == 0
        finally:
            balancer.close()
            await member.close()


class Watched:
    """A python-socketio client as an app uses it (reconnecting by itself), and what befell it."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection_delay=0.1, reconnection_delay_max=0.2)
        self.connects = 0
        self.disconnects: list[str] = []
        self.sio.on("connect", self._connected, namespace="/chat")
        self.sio.on("disconnect", self._disconnected, namespace="/chat")

    def _connected(self) -> None:
        self.connects += 1

    def _disconnected(self, reason: str) -> None:
        self.disconnects.append(reason)

    async def call(self, payload: dict[str, str], timeout: float = 10) -> Any:
        return await self.sio.call("send", payload, namespace="/chat", timeout=timeout)

    async def shut_down(self, hub: HubSocketServer) -> None:
        """Stop reconnecting, the hub closing the session: a long-polling client's own close
        would wait for its open poll, which the hub answers only when it has packets."""
        hub.drain.phase = DrainPhase.REFUSING
        await close_transports(hub)
        await self.sio.shutdown()

    async def until(self, connects: int, disconnects: int) -> None:
        async with asyncio.timeout(10):
            while self.connects < connects or len(self.disconnects) < disconnects:
                await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    "transports", [["websocket"], ["polling"], ["polling", "websocket"]], ids=str
)
async def test_a_running_send_is_acknowledged_before_the_transport_drops_and_the_client_returns(
    settings: Settings, room: Any, pool: asyncpg.Pool, transports: list[str]
) -> None:
    room_id, owner, _ = room
    client = Watched()
    async with own_hub(settings) as (sio, url):
        await client.sio.connect(
            url, auth={"token": owner[1]}, namespaces=["/chat"], transports=transports
        )
        try:
            loop = asyncio.get_running_loop()
            async with sends_held(pool, room_id):
                running = asyncio.create_task(client.call(send(room_id, "running")))
                await until_a_send_waits(pool)
                draining = asyncio.create_task(drain(sio, notice_s=0, deadline=loop.time() + 8))
                async with asyncio.timeout(5):
                    while not sio.drain.refusing:
                        await asyncio.sleep(0.01)
                refused = await client.call(send(room_id, "refused"))
                assert refused["error"]["code"] == UNAVAILABLE
                await asyncio.sleep(0.3)
                assert not draining.done() and not client.disconnects  # the send holds it
            assert (await running)["ok"]  # released: stored, and its ack written
            await draining
            await client.until(connects=1, disconnects=1)
            # A dropped transport, which socket.io clients reconnect after (a DISCONNECT or an
            # Engine.IO CLOSE would be "server disconnect", after which they do not).
            assert client.disconnects == [client.sio.reason.TRANSPORT_ERROR]
            sio.drain.phase = DrainPhase.SERVING  # stands for the replica it reconnects to
            await client.until(connects=2, disconnects=1)
            assert await stored(pool, room_id, "running") == 1
            assert await stored(pool, room_id, "refused") == 0
        finally:
            await client.shut_down(sio)


async def test_a_send_still_running_at_the_deadline_is_cancelled_and_its_retry_is_stored_once(
    settings: Settings, room: Any, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    room_id, owner, _ = room
    client = Watched()
    async with own_hub(settings) as (sio, url):
        await client.sio.connect(
            url, auth={"token": owner[1]}, namespaces=["/chat"], transports=["websocket"]
        )
        try:
            loop = asyncio.get_running_loop()
            with caplog.at_level(logging.WARNING, logger="realtime.drain"):
                async with sends_held(pool, room_id):
                    hung = asyncio.create_task(client.call(send(room_id, "hung"), timeout=3))
                    await until_a_send_waits(pool)
                    deadline = loop.time() + 1.5
                    await drain(sio, notice_s=0, deadline=deadline)
                    assert loop.time() <= deadline + 0.1
                    await client.until(connects=1, disconnects=1)
            assert "cancelled 1 event handlers" in caplog.text
            with pytest.raises(socketio.exceptions.TimeoutError):  # no ack: the client retries
                await hung
            sio.drain.phase = DrainPhase.SERVING
            await client.until(connects=2, disconnects=1)
            retried = await client.call(send(room_id, "hung"))
            assert retried["ok"] and await stored(pool, room_id, "hung") == 1
        finally:
            await client.shut_down(sio)


async def test_an_idle_hub_drains_at_once(settings: Settings, room: Any) -> None:
    _, owner, _ = room
    async with own_hub(settings) as (sio, url):
        member = await ChatClient.connect(url, owner[1])
        loop = asyncio.get_running_loop()
        started = loop.time()
        await drain(sio, notice_s=0, deadline=started + 8)
        assert loop.time() - started < 0.5
        assert sio.drain.phase is DrainPhase.CLOSED and not sio.open_sockets()
        async with asyncio.timeout(5):
            while member.sio.connected:
                await asyncio.sleep(0.02)


def test_while_refusing_only_the_requests_of_open_sessions_pass() -> None:
    drain_state = Drain()
    assert not drain_state.reported and not drain_state.refuses("/healthz", SOCKETS, False)
    drain_state.phase = DrainPhase.NOTICE
    assert drain_state.reported and not drain_state.refuses(SOCKETS, SOCKETS, False)
    drain_state.phase = DrainPhase.REFUSING
    assert drain_state.refuses("/healthz", SOCKETS, False)
    assert drain_state.refuses(SOCKETS, SOCKETS, False)  # a new session
    assert not drain_state.refuses(SOCKETS, SOCKETS, True)  # one open here
    assert drain_state.refuses("/app/", SOCKETS, True)
