"""SIGTERM drains a hub replica (`realtime.drain`): two `pawhub hub` processes sharing
PostgreSQL and Redis behind the shipped nginx configuration, members of three rooms chatting
on both. One room's sends are held mid-flight on the victim by a row lock when it is signalled:
its /healthz says draining at once; after the notice it refuses new connections while those
sends keep it open; released, they are acknowledged, every transport drops, the process exits
0 within 10 s, and its members reconnect by themselves through nginx to the survivor, catch up
by since_seq and see every acknowledged message exactly once; nobody is told they left. A send
the victim did not answer was not stored by it. A send stuck past the drain's deadline does
not hold the exit."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest
import socketio

from deploy.embedded import free_port
from pawhub.settings import Settings
from tests.deploy.nginx_process import running_nginx
from tests.e2e.drain_members import DRAIN_BOUND_S, Chat, Member, hosts, place_members, seat
from tests.e2e.hubs import HubProcess, start_hub_process
from tests.realtime.test_drain import until_a_send_waits

pytestmark = pytest.mark.slow

NOTICE_S = 0.5  # the victim's HUB_DRAIN_NOTICE_S
DRAINING = {"status": "draining"}


async def health_after_signal(url: str) -> tuple[float, int, Any]:
    """The first /healthz answer that is not 200, and when (monotonic)."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(2):
        while True:
            async with http.get(f"{url}/healthz") as response:
                if response.status != 200:
                    return time.monotonic(), response.status, await response.json()
            await asyncio.sleep(0.01)


async def test_sigterm_drains_a_replica_and_its_members_resume_on_the_other(
    settings: Settings, pool: asyncpg.Pool, make_user: Any, tmp_path: Path
) -> None:
    victim, survivor = await asyncio.gather(
        start_hub_process(settings, HUB_DRAIN_NOTICE_S=str(NOTICE_S)),
        start_hub_process(settings),
    )
    ports = [int(urlsplit(hub.url).port or 0) for hub in (victim, survivor)]
    members: list[Member] = []
    chat = Chat(pool)
    chatters: list[asyncio.Task[None]] = []
    try:
        with running_nginx(tmp_path, ports, api_port=free_port()) as balancer:
            on_victim, on_survivor = await place_members(make_user, balancer, victim, survivor)
            members = on_victim + on_survivor
            extra = on_victim[4:] + on_survivor[2:]
            held = await seat(pool, on_victim[:2])  # its sends will be held on the victim
            await seat(pool, [on_victim[2], on_survivor[0], *extra[::2]])
            await seat(pool, [on_victim[3], on_survivor[1], *extra[1::2]])
            chatters = [asyncio.create_task(member.chat(chat)) for member in members]
            await asyncio.sleep(1)

            async with pool.acquire() as conn:
                lock = conn.transaction()
                await lock.start()
                await conn.execute("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", held)
                await until_a_send_waits(pool)
                chat.signalled_at = time.monotonic()
                victim.process.send_signal(signal.SIGTERM)
                answered_at, status, body = await health_after_signal(victim.url)
                assert (status, body) == (503, DRAINING)
                assert answered_at - chat.signalled_at < NOTICE_S
                await asyncio.sleep(NOTICE_S + 0.3)
                # Refusing now, and held open by the sends waiting on the lock.
                async with aiohttp.ClientSession() as http:
                    handshake = f"{victim.url}/socket.io/?EIO=4&transport=polling"
                    async with http.get(handshake) as refused:
                        assert (refused.status, await refused.json()) == (503, DRAINING)
                    probe = socketio.AsyncClient(reconnection=False, http_session=http)
                    with pytest.raises(socketio.exceptions.ConnectionError):
                        await probe.connect(
                            victim.url, auth={"token": members[0].token}, transports=["websocket"]
                        )
                assert victim.process.poll() is None
                assert not any(member.disconnects for member in members)
                await lock.rollback()
            code = await asyncio.to_thread(victim.process.wait, DRAIN_BOUND_S + 5)
            took = time.monotonic() - chat.signalled_at
            chat.victim_exited.set()
            assert code == 0 and took < DRAIN_BOUND_S, (code, took)

            await asyncio.sleep(1)  # chatting on the survivor alone
            chat.sending = False
            async with asyncio.timeout(DRAIN_BOUND_S):
                await asyncio.gather(*chatters)
            await check_everything_acknowledged_is_seen_once(chat, members, survivor)
    finally:
        chat.sending = False
        for task in chatters:
            task.cancel()
        for member in members:
            with contextlib.suppress(Exception):
                await member.sio.shutdown()
        for hub in (victim, survivor):
            hub.stop()


async def check_everything_acknowledged_is_seen_once(
    chat: Chat, members: list[Member], survivor: HubProcess
) -> None:
    assert chat.answered_while_draining >= 1  # the held sends, at least
    assert chat.lost == [], f"stored without an ack: {chat.lost}"
    rows = await chat.pool.fetch(
        "SELECT room, seq, client_id FROM messages WHERE room = ANY($1::uuid[]) ORDER BY seq",
        list({member.room for member in members}),
    )
    assert {row["client_id"]: row["seq"] for row in rows} == chat.acked
    last: dict[str, int] = {}
    for row in rows:
        room = str(row["room"])
        assert row["seq"] == last.get(room, 0) + 1, f"a gap or repeat in {room}"
        last[room] = row["seq"]
    async with aiohttp.ClientSession() as http:
        for member in members:
            # The victim's members dropped as a transport, and reconnected by themselves.
            dropped = member.placed_on_victim
            assert member.disconnects == ([member.sio.reason.TRANSPORT_ERROR] if dropped else [])
            assert member.connects == 1 + dropped
            assert await hosts(http, survivor, member.sio.eio.sid)
            async with asyncio.timeout(10):
                while len(set(member.seen)) < last[member.room]:
                    await asyncio.sleep(0.05)
            assert sorted(member.seen) == list(range(1, last[member.room] + 1)), member.name
            for live in member.live:
                assert live == sorted(live), f"{member.name} got messages out of order"
            # The drained members moved; nobody was told they left (and came back).
            assert not [told for told in member.presence if not told["online"]], member.name


async def test_a_send_hung_past_the_deadline_does_not_hold_the_exit(
    settings: Settings, room: Any, pool: asyncpg.Pool
) -> None:
    """A send stuck in PostgreSQL for longer than the drain may take: its handler is cancelled,
    its client's transport still drops, and the process still exits within the bound."""
    room_id, owner, _ = room
    hub = await start_hub_process(settings)
    client = socketio.AsyncClient(reconnection=False)
    dropped: list[str] = []
    client.on("disconnect", dropped.append, namespace="/chat")
    try:
        await client.connect(
            hub.url, auth={"token": owner[1]}, namespaces=["/chat"], transports=["websocket"]
        )
        await client.call("join", {"room": str(room_id)}, namespace="/chat", timeout=5)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", room_id)
            payload = {"room": str(room_id), "client_id": "hung", "body": "stuck"}
            hung = asyncio.create_task(
                client.call("send", payload, namespace="/chat", timeout=DRAIN_BOUND_S + 5)
            )
            await until_a_send_waits(pool)
            signalled = time.monotonic()
            hub.process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(hub.process.wait, DRAIN_BOUND_S + 5)
            took = time.monotonic() - signalled
            assert took < DRAIN_BOUND_S, took
            # Stopped in time, but not cleanly: the stuck statement held its pool connection.
            assert code == 1
            assert dropped == [client.reason.TRANSPORT_ERROR]
        with pytest.raises(socketio.exceptions.TimeoutError):
            await hung  # never answered: the client sends it again elsewhere
    finally:
        with contextlib.suppress(Exception):
            await client.shutdown()
        hub.stop()
