"""A load-generator process: connects its share of the clients, sends on a fixed timetable and
measures every delivery its clients receive.

Open loop: each send is due at `start + k / rate` (senders staggered evenly over the period)
and carries that *scheduled* time, so a server that falls behind shows as latency instead of
silently slowing the senders down (no coordinated omission). All processes use
CLOCK_MONOTONIC (`time.monotonic_ns`), which Linux shares between processes.

Protocol with the runner: the worker puts ("connected", ...), periodic ("progress", ...),
("sent", finals) and ("result", WorkerResult) on the shared queue; the runner answers on the
worker's pipe with the start time, then with every stream's final number.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.queues import Queue
from typing import Any

import msgspec
import uvloop

from bench.chat import histogram
from bench.chat.sio_client import ConnectRefused, SocketIOClient
from bench.chat.tracking import ClientTally

NAMESPACE = "/chat"
_MESSAGE_PREFIX = '["message",'
_PROGRESS_EVERY_S = 0.5
_JOIN_TIMEOUT_S = 30.0
STORM_WINDOW_S = 10.0  # live traffic sent this long after the kill is the storm's latency


@dataclass(frozen=True)
class ClientPlan:
    index: int
    url: str
    token: str
    room: str
    sender: int | None  # the global sender number, None for a listener
    fallback_url: str | None = None  # in a storm: the surviving hub it reconnects to


@dataclass(frozen=True)
class WorkerPlan:
    worker: int
    run_tag: str
    clients: list[ClientPlan]
    senders_total: int
    rate: float
    body_bytes: int
    warmup: float
    duration: float
    drain: float
    connect_concurrency: int
    numbered_by_seq: bool  # pawhub: streams are rooms numbered by seq; node: sender counters
    storm_at: float | None = None  # seconds into the window when the hub is killed


@dataclass
class WorkerResult:
    worker: int
    connected: int = 0
    connect_failed: int = 0
    connect_seconds: float = 0.0
    connect_histogram: bytes = b""
    latency_histogram: bytes = b""
    ack_histogram: bytes = b""
    sent: int = 0
    sent_in_window: int = 0
    deliveries: int = 0
    deliveries_in_window: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    per_second_deliveries: list[int] = field(default_factory=list)
    per_second_sends: list[int] = field(default_factory=list)
    per_second_latency_max_us: list[int] = field(default_factory=list)
    storm_dropped: int = 0  # clients whose hub was killed under them
    storm_recovered_ns: list[int] = field(default_factory=list)  # when each was caught up
    storm_caught_up: int = 0  # messages they missed and got back through since_seq
    storm_retries: int = 0  # reconnects or joins refused or failed, then tried again
    storm_latency_histogram: bytes = b""  # live traffic sent within STORM_WINDOW_S of it


class JoinRefused(Exception):
    """The hub answered a join with an error."""


class _Delivered(msgspec.Struct):
    room: str
    seq: int
    client_id: str


_decode_event = msgspec.json.Decoder(tuple[str, _Delivered]).decode


class _Client:
    __slots__ = ("connection", "moved", "pending", "plan", "tally")

    connection: SocketIOClient

    def __init__(self, plan: ClientPlan) -> None:
        self.plan = plan
        self.tally = ClientTally(first=1)
        # While a reconnected client waits for its join's answer, live messages wait here,
        # so the missed ones it brings come first, as a real client would show them.
        self.pending: list[tuple[str, int]] | None = None
        self.moved = False  # its hub was killed under it, and it went to another

    def since_seq(self) -> int:
        """The highest seq of its room it saw: what a client rejoins with."""
        stream = self.tally.streams.get(self.plan.room)
        return (stream.next if stream is not None else self.tally.first) - 1


class _Worker:
    def __init__(self, plan: WorkerPlan, events: Queue[Any], commands: Connection) -> None:
        self.plan = plan
        self.events = events
        self.commands = commands
        self.result = WorkerResult(worker=plan.worker)
        self.errors: Counter[str] = Counter()
        self.connect_histogram = histogram.new_histogram()
        self.latency_histogram = histogram.new_histogram()
        self.ack_histogram = histogram.new_histogram()
        self.storm_latency_histogram = histogram.new_histogram()
        self.clients: list[_Client] = []
        self.gate = asyncio.Semaphore(plan.connect_concurrency)  # connects in flight
        self.recoveries: set[asyncio.Task[None]] = set()
        self.finals: dict[str, dict[str, int]] = {}  # room -> stream -> last number acked
        seconds = int(plan.warmup + plan.duration + plan.drain) + 2
        self.per_second_deliveries = [0] * seconds
        self.per_second_sends = [0] * seconds
        self.per_second_latency_max = [0] * seconds
        self.start_ns = 0
        self.window = (0, 0)  # measured interval, after the warm-up
        self.storm_ns = 0  # when the storm's hub is killed (0: no storm)
        self.closing = False

    # connecting

    async def connect_all(self) -> None:
        began = time.perf_counter()
        await asyncio.gather(*(self._connect(plan) for plan in self.plan.clients))
        self.result.connect_seconds = time.perf_counter() - began
        self.result.connected = len(self.clients)
        self.result.connect_failed = len(self.plan.clients) - len(self.clients)

    async def _connect(self, plan: ClientPlan) -> None:
        async with self.gate:
            client = _Client(plan)
            try:
                joined = await self._open(client, plan.url, since_seq=None)
            except ConnectRefused as refused:
                self.errors[f"connect refused: {refused}"] += 1
                return
            except (OSError, TimeoutError) as exc:
                self.errors[f"connect failed: {type(exc).__name__}"] += 1
                await client.connection.close()
                return
            except JoinRefused:
                self.errors["join refused"] += 1
                await client.connection.close()
                return
            if self.plan.numbered_by_seq:  # the room's seq continues from earlier runs
                client.tally.first = int(joined["last_seq"]) + 1
            self.clients.append(client)

    async def _open(self, client: _Client, url: str, since_seq: int | None) -> dict[str, Any]:
        """Connect `client` to `url` and join its room; the join's answer."""
        client.connection = SocketIOClient(NAMESPACE, self._receiver(client), self._closed(client))
        began = time.perf_counter_ns()
        await client.connection.connect(url, {"token": client.plan.token})
        self.connect_histogram.record_value(max(1, (time.perf_counter_ns() - began) // 1000))
        request: dict[str, Any] = {"room": client.plan.room}
        if since_seq is not None:
            request["since_seq"] = since_seq
        joined = await client.connection.call("join", request, _JOIN_TIMEOUT_S)
        if not (isinstance(joined, dict) and joined.get("ok")):
            raise JoinRefused(str(joined))
        return dict(joined)

    def _closed(self, client: _Client) -> Any:
        def closed() -> None:
            if self.closing or client.pending is not None:  # a recovery's own attempts
                return
            if client.plan.fallback_url is None or not self.storm_ns or client.moved:
                self.errors["disconnected"] += 1  # a storm moves a client once
                return
            client.moved = True
            recovery = asyncio.create_task(self._recover(client, client.plan.fallback_url))
            self.recoveries.add(recovery)
            recovery.add_done_callback(self.recoveries.discard)

        return closed

    # a reconnect storm

    async def _recover(self, client: _Client, url: str) -> None:
        """Reconnect to a surviving hub, as a client of a dead one does, and catch up on what
        it missed with `since_seq` until the join says nothing more is missing."""
        self.result.storm_dropped += 1
        client.pending = []
        backoff_s = 0.05
        while not self.closing:
            try:
                async with self.gate:
                    joined = await self._open(client, url, client.since_seq())
                    while self._catch_up(client, joined):
                        joined = await client.connection.call(
                            "join",
                            {"room": client.plan.room, "since_seq": client.since_seq()},
                            _JOIN_TIMEOUT_S,
                        )
            except Exception:  # refused, dropped, timed out: as a real client, try again
                self.result.storm_retries += 1
                client.pending = []  # the next join's missed brings them again
                with contextlib.suppress(Exception):
                    await client.connection.close()
                await asyncio.sleep(backoff_s * (0.5 + random.random()))
                backoff_s = min(backoff_s * 2, 1.0)
                continue
            self.result.storm_recovered_ns.append(time.monotonic_ns())
            cursor = int(joined["last_seq"])
            pending, client.pending = client.pending or [], None
            for packet, arrived in pending:
                # Live after the last join's cursor; the earlier ones came in its missed.
                if _decode_event(packet)[1].seq > cursor:
                    self._on_packet(client, packet, arrived)
            return

    def _catch_up(self, client: _Client, joined: Any) -> bool:
        """Take in a join's missed messages; True when it says more are missing."""
        if not (isinstance(joined, dict) and joined.get("ok")):
            raise JoinRefused(str(joined))
        for message in joined["missed"]:
            if client.tally.observe(message["room"], int(message["seq"])):
                self.result.storm_caught_up += 1
        return bool(joined["has_more"])

    # receiving

    def _receiver(self, client: _Client) -> Any:
        def receive(packet: str) -> None:
            if not packet.startswith(_MESSAGE_PREFIX):
                return  # presence and other events
            if client.pending is not None:
                client.pending.append((packet, time.monotonic_ns()))
                return
            self._on_packet(client, packet, time.monotonic_ns())

        return receive

    def _on_packet(self, client: _Client, packet: str, now: int) -> None:
        _, message = _decode_event(packet)
        try:  # the client_id comes back verbatim; the body may be moderated
            _, sender, counter, sent_ns = message.client_id.split("-")
        except ValueError:
            self.errors["foreign message"] += 1
            return
        if self.plan.numbered_by_seq:
            fresh = client.tally.observe(message.room, message.seq)
        else:
            fresh = client.tally.observe(f"{message.room}/{sender}", int(counter))
        if fresh:
            self._count_delivery(now, int(sent_ns))

    def _count_delivery(self, now: int, sent_ns: int) -> None:
        result = self.result
        result.deliveries += 1
        if now < sent_ns:  # the tester's own fault: reported, so no run hides it
            self.errors["delivered before its send time"] += 1
        latency_us = max(1, (now - sent_ns) // 1000)
        window_start, window_end = self.window
        if window_start <= now < window_end:
            result.deliveries_in_window += 1
        if window_start <= sent_ns < window_end:
            self.latency_histogram.record_value(latency_us)
        if self.storm_ns and 0 <= sent_ns - self.storm_ns < STORM_WINDOW_S * 1e9:
            self.storm_latency_histogram.record_value(latency_us)
        second = min((now - self.start_ns) // 1_000_000_000, len(self.per_second_deliveries) - 1)
        if second >= 0:
            self.per_second_deliveries[second] += 1
            if latency_us > self.per_second_latency_max[second]:
                self.per_second_latency_max[second] = latency_us

    # sending

    async def send_on_timetable(self) -> None:
        plan = self.plan
        senders = [client for client in self.clients if client.plan.sender is not None]
        if not senders or plan.rate <= 0:
            return
        period_ns = 1e9 / plan.rate
        # Stagger the senders of all processes evenly over one period.
        timetable = sorted(
            (period_ns * client.plan.sender / plan.senders_total, client)  # type: ignore[operator]
            for client in senders
        )
        end_ns = self.window[1]
        padding = "lorem ipsum " * (plan.body_bytes // 12 + 1)
        for round_number in range(int(plan.rate * (plan.warmup + plan.duration)) + 1):
            for offset, client in timetable:
                due = int(self.start_ns + round_number * period_ns + offset)
                if due >= end_ns:
                    return
                delay = due - time.monotonic_ns()
                if delay > 0:
                    await asyncio.sleep(delay / 1e9)
                counter = round_number + 1
                body = f"bench {counter} {padding}"[: plan.body_bytes]
                # A late message is timed from its schedule (no coordinated omission); one that
                # uvloop's millisecond timers let out early, from when it is sent: stamped with
                # its schedule it could arrive "before" it, and sub-millisecond latencies read 0.
                await self._send(client, min(due, time.monotonic_ns()), counter, body)

    async def _send(self, client: _Client, due: int, counter: int, body: str) -> None:
        result = self.result
        room = client.plan.room
        stream = room if self.plan.numbered_by_seq else f"{room}/{client.plan.sender}"
        room_finals = self.finals.setdefault(room, {})
        room_finals.setdefault(stream, 0)

        def acknowledged(ack: Any) -> None:
            self.ack_histogram.record_value(max(1, (time.monotonic_ns() - due) // 1000))
            if not (isinstance(ack, dict) and ack.get("ok")):
                error = ack.get("error", {}).get("code", "?") if isinstance(ack, dict) else "?"
                self.errors[f"send refused: {error}"] += 1
                return
            number = int(ack["message"]["seq"]) if self.plan.numbered_by_seq else counter
            room_finals[stream] = max(room_finals[stream], number)

        payload = {
            "room": room,
            "client_id": f"{self.plan.run_tag}-{client.plan.sender}-{counter}-{due}",
            "body": body,
        }
        try:
            await client.connection.emit("send", payload, acknowledged)
        except ConnectionError:
            self.errors["send failed"] += 1
            return
        result.sent += 1
        if due >= self.window[0]:
            result.sent_in_window += 1
        second = min((due - self.start_ns) // 1_000_000_000, len(self.per_second_sends) - 1)
        self.per_second_sends[second] += 1

    # finishing

    async def wait_for_acks(self, deadline_ns: int) -> None:
        while time.monotonic_ns() < deadline_ns:
            if not any(client.connection.pending_acks for client in self.clients):
                return
            await asyncio.sleep(0.05)
        unanswered = sum(client.connection.pending_acks for client in self.clients)
        if unanswered:
            self.errors["ack timeout"] += unanswered

    def _caught_up(self, finals: dict[str, dict[str, int]]) -> bool:
        return all(
            client.tally.lost(finals.get(client.plan.room, {})) == 0 for client in self.clients
        )

    async def wait_for_deliveries(self, finals: dict[str, dict[str, int]], deadline: int) -> None:
        while time.monotonic_ns() < deadline:
            if self._caught_up(finals):
                return
            await asyncio.sleep(0.1)

    def finish(self, finals: dict[str, dict[str, int]]) -> WorkerResult:
        result = self.result
        for client in self.clients:
            result.lost += client.tally.lost(finals.get(client.plan.room, {}))
            result.duplicated += client.tally.duplicated
            result.reordered += client.tally.reordered
        result.errors = dict(self.errors)
        result.connect_histogram = histogram.encode(self.connect_histogram)
        result.latency_histogram = histogram.encode(self.latency_histogram)
        result.ack_histogram = histogram.encode(self.ack_histogram)
        result.storm_latency_histogram = histogram.encode(self.storm_latency_histogram)
        result.per_second_deliveries = self.per_second_deliveries
        result.per_second_sends = self.per_second_sends
        result.per_second_latency_max_us = self.per_second_latency_max
        return result

    async def report_progress(self) -> None:
        while True:
            await asyncio.sleep(_PROGRESS_EVERY_S)
            errors = sum(self.errors.values())
            self.events.put(
                ("progress", self.plan.worker, self.result.deliveries, self.result.sent, errors)
            )

    async def run(self) -> None:
        plan = self.plan
        await self.connect_all()
        self.events.put(("connected", plan.worker, self.result.connected, dict(self.errors)))
        self.start_ns = await asyncio.to_thread(self.commands.recv)
        measure_from = self.start_ns + int(plan.warmup * 1e9)
        self.window = (measure_from, measure_from + int(plan.duration * 1e9))
        if plan.storm_at is not None:
            self.storm_ns = measure_from + int(plan.storm_at * 1e9)
        progress = asyncio.create_task(self.report_progress())
        await self.send_on_timetable()
        drain_deadline = self.window[1] + int(plan.drain * 1e9)
        await self.wait_for_acks(drain_deadline)
        self.events.put(("sent", plan.worker, self.finals))
        finals: dict[str, dict[str, int]] = await asyncio.to_thread(self.commands.recv)
        await self.wait_for_deliveries(finals, drain_deadline)
        progress.cancel()
        self.closing = True
        for recovery in list(self.recoveries):
            recovery.cancel()
        result = self.finish(finals)
        await asyncio.gather(*(client.connection.close() for client in self.clients))
        self.events.put(("result", plan.worker, result))


def raise_file_limit() -> None:
    """Every connection is a file descriptor: allow as many as the hard limit does."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def work(plan: WorkerPlan, events: Queue[Any], commands: Connection) -> None:
    """The worker process's entry point."""
    raise_file_limit()
    try:
        uvloop.run(_Worker(plan, events, commands).run())
    except BaseException:
        events.put(("failed", plan.worker, traceback.format_exc()))
    with contextlib.suppress(Exception):
        commands.close()
