"""The legitimate room, in a process of its own: members sending on a fixed timetable and a
/healthz prober, every send's acknowledgement and every probe timed.

Open loop, as in bench/chat/worker.py: send `k` is due at `start + k / rate`, round-robin
over the members, whatever the acknowledgements do, and is timed from when it was due, so a
stalled hub shows as latency and not as fewer sends. The runner assigns samples to phases by
time afterwards (CLOCK_MONOTONIC is shared between processes).

Protocol with the runner: ("connected", count, errors), then ("room", ...) progress on the
queue; the runner sends the start time, later the stop time, on the pipe; the result is
("room result", RoomResult).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from itertools import count
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from typing import Any

import aiohttp
import uvloop

from bench.chat.sio_client import ConnectRefused, SocketIOClient
from bench.chat.worker import NAMESPACE

ANSWERED, UNANSWERED, NOT_SENT = "ok", "unanswered", "not sent"  # besides refusal codes
_PROGRESS_EVERY_S = 0.25
_CALL_TIMEOUT_S = 30.0
_PROBE_TIMEOUT_S = 30.0
_DRAIN_S = 10.0  # after the stop, for the last acks


@dataclass(frozen=True)
class RoomPlan:
    url: str
    room: str
    tokens: list[str]  # one member per token
    rate: float
    healthz_every_s: float


@dataclass
class RoomResult:
    connected: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    # (due ns, ack latency us, outcome): ANSWERED, a refusal's error code, UNANSWERED (latency
    # is then the wait until the end, a lower bound) or NOT_SENT (the member was disconnected).
    sends: list[tuple[int, int, str]] = field(default_factory=list)
    # (sent ns, latency us, HTTP status, or 0 when the probe failed or timed out)
    probes: list[tuple[int, int, int]] = field(default_factory=list)
    disconnects: list[int] = field(default_factory=list)  # ns


def _ignore(_: str) -> None:
    """Members' incoming events (messages, typing, presence) are not what is measured."""


class _Member:
    __slots__ = ("connection", "live", "pending")

    def __init__(self, connection: SocketIOClient) -> None:
        self.connection = connection
        self.live = True
        self.pending: set[int] = set()  # indexes of sends waiting for their ack


class _Room:
    def __init__(self, plan: RoomPlan, events: Queue[Any], commands: Connection) -> None:
        self.plan = plan
        self.events = events
        self.commands = commands
        self.result = RoomResult()
        self.errors: Counter[str] = Counter()
        self.members: list[_Member] = []
        self.stop_ns: int | None = None
        self.probe_since: int | None = None  # when the probe in flight was sent

    async def connect(self) -> None:
        for token in self.plan.tokens:
            if (member := await self._join(token)) is not None:
                self.members.append(member)
        self.result.connected = len(self.members)

    async def _join(self, token: str) -> _Member | None:
        member = _Member(SocketIOClient(NAMESPACE, _ignore, lambda: self._lost(member)))
        try:
            await member.connection.connect(self.plan.url, {"token": token})
            joined = await member.connection.call("join", {"room": self.plan.room}, _CALL_TIMEOUT_S)
        except (ConnectRefused, OSError, TimeoutError) as exc:
            self.errors[f"connect failed: {type(exc).__name__}"] += 1
            await member.connection.close()
            return None
        if not (isinstance(joined, dict) and joined.get("ok")):
            self.errors["join refused"] += 1
            await member.connection.close()
            return None
        return member

    def _lost(self, member: _Member) -> None:
        """The hub dropped a member (our own closes at the end do not call this)."""
        member.live = False
        self.result.disconnects.append(time.monotonic_ns())
        self._give_up(member)

    def _give_up(self, member: _Member) -> None:
        """The member's acks still awaited are unanswered, timed until now (a lower bound)."""
        now = time.monotonic_ns()
        for index in member.pending:
            due, _, _ = self.result.sends[index]
            self.result.sends[index] = (due, max(1, (now - due) // 1000), UNANSWERED)
        member.pending.clear()

    async def send_on_timetable(self, start_ns: int) -> None:
        period_ns = 1e9 / self.plan.rate
        for index in count():
            due = int(start_ns + index * period_ns)
            if self.stop_ns is not None and due >= self.stop_ns:
                return
            delay = due - time.monotonic_ns()
            if delay > 0:
                await asyncio.sleep(delay / 1e9)
            if self.stop_ns is not None and due >= self.stop_ns:
                return
            await self._send(self.members[index % len(self.members)], min(due, time.monotonic_ns()))

    async def _send(self, member: _Member, due: int) -> None:
        sends = self.result.sends
        index = len(sends)
        if not member.live:
            sends.append((due, 0, NOT_SENT))
            return

        def acknowledged(ack: Any) -> None:
            if index not in member.pending:
                return  # already given up on (disconnected)
            member.pending.discard(index)
            latency_us = max(1, (time.monotonic_ns() - due) // 1000)
            if isinstance(ack, dict) and ack.get("ok"):
                sends[index] = (due, latency_us, ANSWERED)
            else:
                code = ack.get("error", {}).get("code", "?") if isinstance(ack, dict) else "?"
                sends[index] = (due, latency_us, str(code))

        payload = {"room": self.plan.room, "client_id": f"flood-bench-{due}", "body": "hello"}
        member.pending.add(index)
        sends.append((due, 0, UNANSWERED))
        try:
            await member.connection.emit("send", payload, acknowledged)
        except ConnectionError:
            member.pending.discard(index)
            sends[index] = (due, 0, NOT_SENT)

    async def probe_on_timetable(self, session: aiohttp.ClientSession, start_ns: int) -> None:
        """One /healthz request at a time, every `healthz_every_s` (a late probe is not
        followed by a burst of catch-up probes)."""
        every_ns = int(self.plan.healthz_every_s * 1e9)
        timeout = aiohttp.ClientTimeout(total=_PROBE_TIMEOUT_S)
        due = start_ns
        while self.stop_ns is None or due < self.stop_ns:
            delay = due - time.monotonic_ns()
            if delay > 0:
                await asyncio.sleep(delay / 1e9)
            sent = self.probe_since = time.monotonic_ns()
            try:
                async with session.get(self.plan.url + "/healthz", timeout=timeout) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            self.probe_since = None
            self.result.probes.append((sent, max(1, (time.monotonic_ns() - sent) // 1000), status))
            due = max(due + every_ns, time.monotonic_ns())

    def pending(self) -> int:
        return sum(len(member.pending) for member in self.members)

    async def report_progress(self) -> None:
        """Sends so far, acks awaited, the oldest one's wait and the probe's (the runner's
        test of recovery), the last probe's latency, members dropped."""
        sends, probes = self.result.sends, self.result.probes
        while True:
            await asyncio.sleep(_PROGRESS_EVERY_S)
            now = time.monotonic_ns()
            oldest = min(
                (sends[index][0] for member in self.members for index in member.pending),
                default=now,
            )
            probe_since = self.probe_since or now
            self.events.put(
                (
                    "room",
                    len(sends),
                    self.pending(),
                    (now - oldest) / 1e6,
                    (now - probe_since) / 1e6,
                    probes[-1][1] / 1000 if probes else 0.0,
                    len(self.result.disconnects),
                )
            )

    async def wait_for_acks(self) -> None:
        deadline = time.monotonic_ns() + int(_DRAIN_S * 1e9)
        while self.pending() and time.monotonic_ns() < deadline:
            await asyncio.sleep(0.05)
        for member in self.members:
            self._give_up(member)

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            await self.connect()
            self.events.put(("connected", self.result.connected, dict(self.errors)))
            start_ns: int = await asyncio.to_thread(self.commands.recv)
            progress = asyncio.create_task(self.report_progress())
            sending = asyncio.create_task(self.send_on_timetable(start_ns))
            probing = asyncio.create_task(self.probe_on_timetable(session, start_ns))
            self.stop_ns = await asyncio.to_thread(self.commands.recv)
            await sending
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(probing, _PROBE_TIMEOUT_S)
            await self.wait_for_acks()
            progress.cancel()
            self.result.errors = dict(self.errors)
            await asyncio.gather(*(member.connection.close() for member in self.members))
        self.events.put(("room result", self.result))


def run_room(plan: RoomPlan, events: Queue[Any], commands: Connection) -> None:
    """The room process's entry point."""
    try:
        uvloop.run(_Room(plan, events, commands).run())
    except BaseException:
        events.put(("failed", "room", traceback.format_exc()))
