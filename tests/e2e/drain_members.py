"""Chat members for the drain tests (tests/e2e/test_drain.py): python-socketio clients that
reconnect by themselves, placed on hub replicas through nginx, and what their sends met."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg
import socketio

from domain.chat.conversations import create_conversation
from tests.e2e.hubs import HubProcess

DRAIN_BOUND_S = 10  # a replica's SIGTERM to its exit, at most


class Chat:
    """What the members' sends met, across members."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.sending = True
        self.signalled_at: float | None = None
        self.victim_exited = asyncio.Event()
        self.acked: dict[str, int] = {}
        self.answered_while_draining = 0  # in flight on the victim at the signal, then acked
        self.refused = 0  # `unavailable` from the victim
        self.unanswered: list[str] = []  # sent to the victim, never answered
        self.lost: list[str] = []  # ... yet stored: an ack the drain lost


class Member:
    """A python-socketio client as an app uses it: it reconnects by itself (to the balancer's
    URL) and then joins its room again with since_seq."""

    def __init__(self, user_id: UUID, token: str) -> None:
        self.user_id, self.token, self.name = user_id, token, str(user_id)[:8]
        self.sio = socketio.AsyncClient(reconnection_delay=0.1, reconnection_delay_max=0.5)
        self.room = ""
        self.on_victim = self.placed_on_victim = False  # now; when first connected
        self.seen: list[int] = []  # every delivery, missed or live, in arrival order
        self.live: list[list[int]] = []  # live deliveries, per connection
        self.connects = 0
        self.disconnects: list[str] = []
        self.joined = asyncio.Event()
        self._joining: set[asyncio.Task[None]] = set()
        self.sio.on("connect", self._connected, namespace="/chat")
        self.sio.on("disconnect", self._disconnected, namespace="/chat")
        self.sio.on("message", self._message, namespace="/chat")
        self.presence: list[dict[str, Any]] = []  # presence events told to this member
        self.sio.on("presence", self.presence.append, namespace="/chat")

    def _connected(self) -> None:
        self.connects += 1
        self.live.append([])
        if self.room:  # a reconnect: join again (not from inside the handler: acks wait)
            self.on_victim = False
            task = asyncio.create_task(self.join())
            self._joining.add(task)
            task.add_done_callback(self._joining.discard)

    def _disconnected(self, reason: str) -> None:
        self.disconnects.append(reason)
        self.joined.clear()

    def _message(self, message: dict[str, Any]) -> None:
        self.seen.append(message["seq"])
        self.live[-1].append(message["seq"])

    async def join(self) -> None:
        since, has_more = max(self.seen, default=0), True
        while has_more:
            ack = await self.sio.call(
                "join", {"room": self.room, "since_seq": since}, namespace="/chat", timeout=5
            )
            missed = [message["seq"] for message in ack["missed"]]
            assert missed == sorted(missed), missed
            self.seen.extend(missed)
            since, has_more = (missed or [since])[-1], ack["has_more"]
        self.joined.set()

    async def chat(self, chat: Chat) -> None:
        index = 0
        while chat.sending:
            await self.send(chat, f"{self.name}-{index}")
            index += 1
            await asyncio.sleep(0.01)

    async def send(self, chat: Chat, client_id: str) -> None:
        """Send until acknowledged; check what the victim did not answer."""
        payload = {"room": self.room, "client_id": client_id, "body": f"{self.name} says hi"}
        connection = 0
        while True:
            await self.back(after=connection)
            on_victim, connection = self.on_victim, self.connects
            in_flight_at_signal = chat.signalled_at is None
            try:
                ack = await self.sio.call("send", payload, namespace="/chat", timeout=3)
            except socketio.exceptions.BadNamespaceError:
                connection = 0
                continue  # disconnected before it went out
            except socketio.exceptions.TimeoutError:
                assert on_victim, f"{client_id} unanswered by the survivor"
                chat.unanswered.append(client_id)
                async with asyncio.timeout(DRAIN_BOUND_S + 5):
                    await chat.victim_exited.wait()  # nothing can store it any more
                if await stored(chat.pool, client_id):
                    chat.lost.append(client_id)
                connection = 0
                continue
            if ack["ok"]:
                chat.acked[client_id] = ack["message"]["seq"]
                if on_victim and in_flight_at_signal and chat.signalled_at is not None:
                    chat.answered_while_draining += 1
                return
            assert on_victim and ack["error"]["code"] == "unavailable", ack
            chat.refused += 1  # retried once the victim dropped the transport

    async def back(self, after: int) -> None:
        """Until connected (on a connection after the `after`th) and joined."""
        try:
            async with asyncio.timeout(5):
                while self.connects <= after or not self.joined.is_set():
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"{self.name} did not reconnect ({self.disconnects})") from None


async def stored(pool: asyncpg.Pool, client_id: str) -> bool:
    return bool(await pool.fetchval("SELECT 1 FROM messages WHERE client_id = $1", client_id))


async def hosts(http: aiohttp.ClientSession, hub: HubProcess, sid: str) -> bool:
    """Whether the Engine.IO session `sid` lives on `hub` (a websocket session answers a
    polling request with "Unexpected HTTP request"; another replica does not know it)."""
    async with http.get(f"{hub.url}/socket.io/?EIO=4&transport=polling&sid={sid}") as response:
        text = await response.text()
    assert "Unexpected HTTP request" in text or "Invalid session" in text, text
    return "Unexpected HTTP request" in text


async def place_members(
    make_user: Callable[..., Awaitable[Any]],
    balancer: str,
    victim: HubProcess,
    survivor: HubProcess,
) -> tuple[list[Member], list[Member]]:
    """Members connected through nginx until at least 4 are on the victim and 2 on the other
    (nginx spreads websocket connects at random)."""
    on: dict[bool, list[Member]] = {True: [], False: []}
    async with aiohttp.ClientSession() as http:
        while len(on[True]) < 4 or len(on[False]) < 2:
            assert len(on[True]) + len(on[False]) < 40, "nginx sent every member one way"
            user, token = await make_user(name=f"member {len(on[True]) + len(on[False])}")
            member = Member(user.id, token)
            await member.sio.connect(
                balancer, auth={"token": token}, namespaces=["/chat"], transports=["websocket"]
            )
            sid = member.sio.eio.sid
            member.on_victim = member.placed_on_victim = await hosts(http, victim, sid)
            assert member.on_victim != await hosts(http, survivor, sid)
            on[member.on_victim].append(member)
    return on[True], on[False]


async def seat(pool: asyncpg.Pool, members: list[Member]) -> UUID:
    """A conversation of `members`, which they join."""
    ids = [member.user_id for member in members]
    async with pool.acquire() as conn:
        room = (await create_conversation(conn, ids[0], ids[1:], "drain")).id
    for member in members:
        member.room = str(room)
        await member.join()
    return room
