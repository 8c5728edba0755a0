"""Who must not notice an attack: another member of the room sending, and /healthz, each asked
every 50 ms and timed while the attack runs and a moment after it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import aiohttp

from tests.recording_client import ChatClient

ANSWERED_WITHIN_S = 2.0  # "did not hang": far above any ack or probe of an unattacked hub
T = TypeVar("T")


class Bystanders:
    """Another member sending every 50 ms and /healthz probed every 50 ms, each timed."""

    def __init__(self, url: str, member: ChatClient, room: str) -> None:
        self.url, self.member, self.room = url, member, room
        self.acks: list[float] = []
        self.probes: list[float] = []
        self._stop = asyncio.Event()

    async def _send(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            body = {"room": self.room, "client_id": f"b{len(self.acks)}", "body": "still here"}
            ack = await self.member.call("send", body, timeout=ANSWERED_WITHIN_S)
            assert ack["ok"] is True, ack
            self.acks.append(time.monotonic() - started)
            await asyncio.sleep(0.05)

    async def _probe(self) -> None:
        async with aiohttp.ClientSession() as session:
            while not self._stop.is_set():
                started = time.monotonic()
                async with asyncio.timeout(ANSWERED_WITHIN_S):
                    async with session.get(f"{self.url}/healthz") as response:
                        assert response.status == 200
                self.probes.append(time.monotonic() - started)
                await asyncio.sleep(0.05)

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """While the block runs and a moment after: some answers, each within the bound."""
        running = asyncio.gather(self._send(), self._probe())
        try:
            yield
            await asyncio.sleep(0.3)  # and just after
        finally:
            self._stop.set()
            await running
        assert self.acks and self.probes
        assert max(self.acks) < ANSWERED_WITHIN_S and max(self.probes) < ANSWERED_WITHIN_S


async def while_attacked(attack: Awaitable[T], url: str, member: ChatClient, room: str) -> T:
    """`attack`'s outcome, with Bystanders watching it."""
    async with Bystanders(url, member, room).watching():
        return await attack


async def bystander(connect: Any, member: Any, room: Any) -> ChatClient:
    """`member` connected (through the `connect` fixture) and joined to `room`."""
    client: ChatClient = await connect(member[1])
    assert (await client.call("join", {"room": str(room)}))["ok"]
    return client
