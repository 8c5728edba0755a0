"""Chaos: replicas killed, Redis restarted and replicas drained (SIGTERM) while members chat.
Nothing acknowledged is lost, nothing is delivered twice, every member ends with every message.

`make test` runs one round of each fault; `make chaos` runs many (CHAOS_ROUNDS).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import socketio

from pawhub.settings import Settings
from tests.e2e.hubs import HubProcess, own_redis, start_hub_process

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "3"))
DRAIN_BOUND_S = 10  # a replica's SIGTERM to its exit


class Member:
    """A chat member that fails over to any live replica and recovers by since_seq."""

    def __init__(self, name: str, token: str, room: str, hubs: list[HubProcess]) -> None:
        self.name, self.token, self.room, self.hubs = name, token, room, hubs
        self.seen: list[int] = []  # every delivery, live or recovered, in arrival order
        self.sio: socketio.AsyncClient | None = None

    async def ensure_connected(self) -> socketio.AsyncClient:
        while self.sio is None or not self.sio.connected:
            live = [hub for hub in self.hubs if hub.process.poll() is None]
            hub = random.choice(live)
            sio = socketio.AsyncClient(reconnection=False)
            sio.on("message", self._delivered, namespace="/chat")
            try:
                await sio.connect(
                    hub.url,
                    auth={"token": self.token},
                    namespaces=["/chat"],
                    transports=["websocket"],
                    wait_timeout=5,
                )
                has_more = True
                while has_more:
                    since = max(self.seen, default=0)
                    joined = await sio.call(
                        "join",
                        {"room": self.room, "since_seq": since},
                        namespace="/chat",
                        timeout=5,
                    )
                    self.seen.extend(m["seq"] for m in joined["missed"])
                    has_more = joined["has_more"]
                self.sio = sio
            except Exception:
                with contextlib.suppress(Exception):
                    await sio.disconnect()
                await asyncio.sleep(0.2)
        return self.sio

    async def _delivered(self, message: dict[str, Any]) -> None:
        self.seen.append(message["seq"])

    async def send(self, client_id: str) -> int:
        """Send until acknowledged, failing over as needed; the seq it was stored under."""
        while True:
            sio = await self.ensure_connected()
            try:
                ack = await sio.call(
                    "send",
                    {"room": self.room, "client_id": client_id, "body": f"{self.name} {client_id}"},
                    namespace="/chat",
                    timeout=3,
                )
            except Exception:
                with contextlib.suppress(Exception):
                    await sio.disconnect()
                continue
            if not ack["ok"] and ack["error"]["code"] == "unavailable":  # a draining replica
                await sio.disconnect()
                continue
            assert ack["ok"], ack
            return int(ack["message"]["seq"])

    async def close(self) -> None:
        if self.sio is not None:
            with contextlib.suppress(Exception):
                await self.sio.disconnect()


async def test_chat_survives_replica_kills_and_redis_restarts(
    settings: Settings, room: Any, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    room_id, owner, vet = room
    redis, server, own = own_redis(settings, tmp_path)
    hubs = [await start_hub_process(own), await start_hub_process(own)]
    alice = Member("alice", owner[1], str(room_id), hubs)
    bob = Member("bob", vet[1], str(room_id), hubs)
    acked: dict[str, int] = {}
    sending = True

    async def chatter(member: Member) -> None:
        index = 0
        while sending:
            client_id = f"{member.name}-{index}"
            acked[client_id] = await member.send(client_id)
            index += 1
            await asyncio.sleep(0.01)

    senders = [asyncio.create_task(chatter(alice)), asyncio.create_task(chatter(bob))]
    try:
        for round_ in range(ROUNDS):
            await asyncio.sleep(1.5)
            victim = round_ // 3 % len(hubs)
            if round_ % 3 == 0:
                os.kill(hubs[victim].process.pid, signal.SIGKILL)
                hubs[victim].process.wait()
                await asyncio.sleep(1)
                hubs[victim] = await start_hub_process(own)
            elif round_ % 3 == 1:
                server.stop()
                await asyncio.sleep(2)
                server = redis.start()
            else:  # the graceful path: it drains, its members go to the other
                hubs[victim].process.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(hubs[victim].process.wait, DRAIN_BOUND_S)
                assert code == 0
                hubs[victim] = await start_hub_process(own)
        await asyncio.sleep(1.5)
        sending = False
        await asyncio.gather(*senders)

        stored = await pool.fetch(
            "SELECT seq, client_id FROM messages WHERE room = $1 ORDER BY seq", room_id
        )
        assert [row["seq"] for row in stored] == list(range(1, len(stored) + 1))
        assert {row["client_id"]: row["seq"] for row in stored} == acked
        for member in (alice, bob):
            await member.ensure_connected()
            async with asyncio.timeout(20):
                while len(set(member.seen)) < len(stored):
                    await asyncio.sleep(0.1)
            assert sorted(member.seen) == list(range(1, len(stored) + 1)), (
                f"{member.name} saw a message twice or missed one"
            )
    finally:
        sending = False
        for task in senders:
            task.cancel()
        await alice.close()
        await bob.close()
        for hub in hubs:
            hub.stop()
        server.stop()
