"""The flooder, in a process of its own: one client doing what issue 19's attacker did, one
attack at a time, each bounded by its budget and by the end of its phase.

- `history`: a member sends `history` events without waiting for the acknowledgements.
- `typing`: a member sends `typing` events as fast as the hub takes them (each is relayed to
  every other member).
- `continuation`: a stranger (no token) opens a websocket, starts a text message (FIN=0) and
  sends empty continuation frames, as fast as the hub reads them.
- `binary`: a stranger sends 1 MB binary frames on a websocket.

When the hub drops the connection the flooder opens another, as an attacker would, until the
budget is spent; a connection the hub keeps is held open until the phase ends.

Protocol with the runner: ("flooder ready",) on the queue; then, per (attack, end ns) on the
pipe, ("outcome", Outcome); None on the pipe ends the process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import cycle, repeat
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from typing import Any
from urllib.parse import urlsplit

import uvloop

from bench.chat.sio_client import ConnectRefused, SocketIOClient
from bench.chat.worker import NAMESPACE
from bench.flood.plan import Budgets

_CALL_TIMEOUT_S = 10.0
_YIELD_EVERY = 256  # events pushed between letting the loop read the hub's answers
_CONTINUATIONS_PER_WRITE = 1_000
_CLOSE, _TEXT_START, _CONTINUATION, _BINARY = 0x8, 0x01, 0x00, 0x82  # first header bytes


@dataclass(frozen=True)
class FlooderPlan:
    url: str
    room: str
    token: str  # the flooding member's (the websocket attacks use none)
    budgets: Budgets


@dataclass
class Outcome:
    attack: str
    connections: int = 0  # opened (upgrade answered, or Socket.IO connected and joined)
    refused_connections: int = 0  # upgrade, Socket.IO connect or join refused or failed
    sent: int = 0  # events or frames
    sent_bytes: int = 0  # websocket attacks: frame bytes written
    acked: int = 0  # events answered {ok: true}
    refused: dict[str, int] = field(default_factory=dict)  # error code -> events
    unanswered: int = 0  # events without an answer when the connection ended
    closed_by_hub: dict[str, int] = field(default_factory=dict)  # how -> connections
    first_close_s: float | None = None  # into the attack, when the hub first dropped us
    seconds: float = 0.0  # from the first connect until the flooder stopped


def _ignore(_: str) -> None:
    """The room's messages reach the flooding member too; they are not what it is after."""


class _Attack:
    def __init__(self, plan: FlooderPlan, name: str) -> None:
        self.plan = plan
        self.outcome = Outcome(name)
        self.began = time.monotonic()
        self.refusals: Counter[str] = Counter()
        self.closes: Counter[str] = Counter()

    def closed_by_hub(self, how: str) -> None:
        self.closes[how] += 1
        if self.outcome.first_close_s is None:
            self.outcome.first_close_s = round(time.monotonic() - self.began, 3)

    def finish(self) -> Outcome:
        self.outcome.refused = dict(self.refusals)
        self.outcome.closed_by_hub = dict(self.closes)
        self.outcome.seconds = round(time.monotonic() - self.began, 3)
        return self.outcome

    # a member's events

    async def member_flood(self, event: str, payloads: Callable[[], Any], budget: int) -> None:
        outcome = self.outcome
        while outcome.sent < budget:
            dropped = asyncio.Event()
            client = SocketIOClient(NAMESPACE, _ignore, dropped.set)
            try:
                await client.connect(self.plan.url, {"token": self.plan.token})
                joined = await client.call("join", {"room": self.plan.room}, _CALL_TIMEOUT_S)
                if not (isinstance(joined, dict) and joined.get("ok")):
                    raise ConnectRefused("join refused")
            except (ConnectRefused, OSError, TimeoutError):
                outcome.refused_connections += 1
                await client.close()
                return
            outcome.connections += 1
            try:
                await self._push(client, dropped, event, payloads, budget)
                while client.pending_acks and not dropped.is_set():
                    await asyncio.sleep(0.05)  # the phase's end cuts this short
            finally:
                outcome.unanswered += client.pending_acks
                if dropped.is_set():
                    self.closed_by_hub("disconnected")
                await client.close()
            if not dropped.is_set():
                return

    async def _push(
        self,
        client: SocketIOClient,
        dropped: asyncio.Event,
        event: str,
        payloads: Callable[[], Any],
        budget: int,
    ) -> None:
        outcome = self.outcome
        try:
            while outcome.sent < budget and not dropped.is_set():
                await client.emit(event, payloads(), self._acknowledged)
                outcome.sent += 1
                if outcome.sent % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        except ConnectionError:
            dropped.set()

    def _acknowledged(self, ack: Any) -> None:
        if isinstance(ack, dict) and ack.get("ok"):
            self.outcome.acked += 1
        else:
            error = ack.get("error", {}) if isinstance(ack, dict) else {}
            self.refusals[str(error.get("code", "?"))] += 1

    # a stranger's websocket frames

    async def frame_flood(
        self, writes: Callable[[], Iterator[tuple[bytes, int]]], budget: int
    ) -> None:
        """`writes()` gives one connection's writes, each with the number of frames it holds;
        the budget is checked before each write."""
        outcome = self.outcome
        while outcome.sent < budget:
            try:
                reader, writer = await _open_websocket(self.plan.url)
            except (OSError, ConnectionError):
                outcome.refused_connections += 1
                return
            outcome.connections += 1
            ended = asyncio.create_task(_how_it_ends(reader))
            try:
                for chunk, count in writes():
                    if ended.done() or outcome.sent >= budget:
                        break
                    writer.write(chunk)
                    await writer.drain()
                    outcome.sent += count
                    outcome.sent_bytes += len(chunk)
                await ended  # held open until the hub drops it; the phase's end cuts this short
            except ConnectionError:
                await asyncio.wait([ended], timeout=1.0)
            finally:
                dropped = ended.done()
                if dropped:
                    self.closed_by_hub(ended.result())
                ended.cancel()
                writer.close()
            if not dropped:
                return


def _continuation_writes() -> Iterator[tuple[bytes, int]]:
    """A text message opened (FIN=0), then empty masked continuation frames (6 bytes each)."""
    mask = os.urandom(4)
    yield bytes((_TEXT_START, 0x80)) + mask, 1
    continuations = (bytes((_CONTINUATION, 0x80)) + mask) * _CONTINUATIONS_PER_WRITE
    while True:
        yield continuations, _CONTINUATIONS_PER_WRITE


def _binary_writes(size: int) -> Callable[[], Iterator[tuple[bytes, int]]]:
    """Whole masked binary frames of `size` bytes (random bytes: the hub unmasks them all)."""
    if size < 126:
        header = bytes((_BINARY, 0x80 | size))
    elif size < 1 << 16:
        header = bytes((_BINARY, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((_BINARY, 0x80 | 127)) + size.to_bytes(8, "big")
    whole = header + os.urandom(4 + size)
    return lambda: repeat((whole, 1))


async def _open_websocket(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An Engine.IO websocket, upgraded by hand; raises ConnectionError if refused."""
    address = urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _CALL_TIMEOUT_S)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
        writer.close()
        raise ConnectionError(f"no upgrade: {type(exc).__name__}") from None
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode("latin-1"))
    return reader, writer


async def _how_it_ends(reader: asyncio.StreamReader) -> str:
    """Reads the hub's frames until the connection ends: the close code the hub sent, or how
    the connection ended without one."""
    try:
        while True:
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            if length >= 126:
                length = int.from_bytes(await reader.readexactly(2 if length == 126 else 8), "big")
            payload = await reader.readexactly(length)
            if first & 0x0F == _CLOSE:
                return f"close {int.from_bytes(payload[:2], 'big')}" if payload else "close"
    except asyncio.IncompleteReadError:
        return "closed, no close frame"
    except ConnectionError:
        return "reset"


# the process


async def _attack(plan: FlooderPlan, name: str, end_ns: int) -> Outcome:
    attack, budgets = _Attack(plan, name), plan.budgets
    toggle = cycle((True, False))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, (end_ns - time.monotonic_ns()) / 1e9)):
            if name == "history":
                room = {"room": plan.room}
                await attack.member_flood("history", lambda: room, budgets.history_events)
            elif name == "typing":
                await attack.member_flood(
                    "typing",
                    lambda: {"room": plan.room, "typing": next(toggle)},
                    budgets.typing_events,
                )
            elif name == "continuation":
                await attack.frame_flood(_continuation_writes, budgets.continuation_frames)
            else:
                await attack.frame_flood(
                    _binary_writes(budgets.binary_frame_bytes), budgets.binary_frames
                )
    return attack.finish()


async def _serve(plan: FlooderPlan, events: Queue[Any], commands: Connection) -> None:
    events.put(("flooder ready",))
    while (command := await asyncio.to_thread(commands.recv)) is not None:
        name, end_ns = command
        events.put(("outcome", await _attack(plan, name, end_ns)))


def run_flooder(plan: FlooderPlan, events: Queue[Any], commands: Connection) -> None:
    """The flooder process's entry point."""
    try:
        uvloop.run(_serve(plan, events, commands))
    except BaseException:
        events.put(("failed", "flooder", traceback.format_exc()))
