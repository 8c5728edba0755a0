"""One flood run: the hub (one process, its real limits), the legitimate room, the unflooded
phase, then each attack in turn, each phase lasting until the hub has caught up again."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench.chat.population import populate
from bench.chat.sampler import ProcessSampler
from bench.chat.servers import Services, start_servers
from bench.chat.workload import Workload
from bench.flood.attacks import FlooderPlan, Outcome, run_flooder
from bench.flood.plan import NO_FLOOD, FloodPlan
from bench.flood.report import Phase, build_report, print_summary, write_report
from bench.flood.room import RoomPlan, RoomResult, run_room

_CONNECT_WITHIN_S = 120.0
_OUTCOME_GRACE_S = 30.0  # past its phase, for the flooder to report
_RECOVERED_MS = 100.0  # the oldest awaited ack and the probe in flight are younger than this


class ProcessFailed(RuntimeError):
    """The room or the flooder process crashed; the message holds its traceback."""


@dataclass(frozen=True)
class RoomProgress:
    sent: int = 0
    pending: int = 0
    oldest_pending_ms: float = 0.0
    probe_waiting_ms: float = 0.0
    last_probe_ms: float = 0.0
    disconnects: int = 0

    @property
    def caught_up(self) -> bool:
        return max(self.oldest_pending_ms, self.probe_waiting_ms) < _RECOVERED_MS


class _Processes:
    """The room and the flooder processes, their shared event queue and their pipes."""

    def __init__(self, room: RoomPlan, flooder: FlooderPlan) -> None:
        context = multiprocessing.get_context("spawn")
        self.events: Queue[Any] = context.Queue()
        self.room_pipe, room_end = context.Pipe()
        self.flooder_pipe, flooder_end = context.Pipe()
        self.room: BaseProcess = context.Process(
            target=run_room, args=(room, self.events, room_end), daemon=True
        )
        self.flooder: BaseProcess = context.Process(
            target=run_flooder, args=(flooder, self.events, flooder_end), daemon=True
        )
        self.room.start()
        self.flooder.start()
        self.progress = RoomProgress()

    @property
    def pids(self) -> dict[str, int]:
        return {"room": self.room.pid or 0, "flooder": self.flooder.pid or 0}

    async def next_event(self, timeout: float) -> tuple[Any, ...] | None:
        """The next event other than room progress (which is kept), or None on silence."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event: tuple[Any, ...] = await asyncio.to_thread(self.events.get, True, left)
            except queue.Empty:
                break
            if event[0] == "failed":
                raise ProcessFailed(f"the {event[1]} process failed:\n{event[2]}")
            if event[0] != "room":
                return event
            self.progress = RoomProgress(*event[1:])
        for process in (self.room, self.flooder):
            if not process.is_alive():
                raise ProcessFailed(f"process {process.pid} died without a word")
        return None

    async def expect(self, *kinds: str, timeout: float) -> dict[str, tuple[Any, ...]]:
        """One event of each kind, in whatever order they come."""
        found: dict[str, tuple[Any, ...]] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(kinds):
            event = await self.next_event(max(0.0, deadline - time.monotonic()))
            if event is None or event[0] not in kinds:
                raise ProcessFailed(f"expected {kinds} within {timeout:.0f} s, got {event!r}")
            found[event[0]] = event
        return found

    def stop(self) -> None:
        for process in (self.room, self.flooder):
            process.join(10)
            if process.is_alive():
                process.kill()


class _ProgressView:
    """One bar per phase, with the room's acks and /healthz as they are now."""

    def __init__(self, console: Console, processes: _Processes) -> None:
        self._processes = processes
        self._progress = Progress(
            TextColumn("[bold]{task.description:>24}"),
            BarColumn(),
            TextColumn("sent {task.fields[sent]:>6}  acks awaited {task.fields[pending]:>4}"),
            TextColumn("oldest {task.fields[oldest]:>8} ms  healthz {task.fields[healthz]:>8} ms"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task(
            "", total=1, sent=0, pending=0, oldest="-", healthz="-"
        )

    def __enter__(self) -> _ProgressView:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def phase(self, name: str, seconds: float) -> None:
        self._progress.reset(self._task, total=seconds, description=name)

    def tick(self, elapsed: float) -> None:
        now = self._processes.progress
        self._progress.update(
            self._task,
            completed=elapsed,
            sent=now.sent,
            pending=now.pending,
            oldest=f"{now.oldest_pending_ms:,.0f}",
            healthz=f"{max(now.last_probe_ms, now.probe_waiting_ms):,.1f}",
        )


class _Conductor:
    """Moves the run through its phases, keeping the progress view current."""

    def __init__(self, plan: FloodPlan, processes: _Processes, view: _ProgressView) -> None:
        self.plan = plan
        self.processes = processes
        self.view = view

    async def wait_until(self, name: str, start_ns: int, end_ns: int) -> list[tuple[Any, ...]]:
        """Shows `name`'s progress until `end_ns`; returns the events that came meanwhile."""
        self.view.phase(name, (end_ns - start_ns) / 1e9)
        events = []
        while (now := time.monotonic_ns()) < end_ns:
            self.view.tick((now - start_ns) / 1e9)
            if (
                event := await self.processes.next_event(min(0.25, (end_ns - now) / 1e9))
            ) is not None:
                events.append(event)
        return events

    async def recovery(self, name: str, since_ns: int) -> int | None:
        """When the room's acks and /healthz are answered promptly again (as the room's
        progress reports, four times a second), or None if not within `recover_s`."""
        self.view.phase(f"{name} (recovering)", self.plan.recover_s)
        deadline = since_ns + int(self.plan.recover_s * 1e9)
        while (now := time.monotonic_ns()) < deadline:
            self.view.tick((now - since_ns) / 1e9)
            if self.processes.progress.caught_up:
                return now
            await self.processes.next_event(0.25)
        return None

    async def attack(self, name: str) -> Phase:
        start_ns = time.monotonic_ns()
        end_ns = start_ns + int(self.plan.attack_s * 1e9)
        self.processes.flooder_pipe.send((name, end_ns))
        events = await self.wait_until(name, start_ns, end_ns)
        while not any(event[0] == "outcome" for event in events):
            event = await self.processes.next_event(_OUTCOME_GRACE_S)
            if event is None:
                raise ProcessFailed(f"the flooder did not report on {name!r}")
            events.append(event)
        outcome: Outcome = next(event[1] for event in events if event[0] == "outcome")
        recovered_ns = await self.recovery(name, end_ns)
        last_ns = recovered_ns or time.monotonic_ns()
        return Phase(
            name=name,
            start_ns=start_ns,
            attack_end_ns=end_ns,
            end_ns=max(end_ns, last_ns),
            recovered_s=None if recovered_ns is None else max(0.0, (recovered_ns - end_ns) / 1e9),
            outcome=outcome,
        )

    async def run(self) -> list[Phase]:
        plan = self.plan
        start_ns = time.monotonic_ns() + 500_000_000
        self.processes.room_pipe.send(start_ns)
        baseline_ns = start_ns + int(plan.warmup_s * 1e9)
        await self.wait_until("warm-up", start_ns, baseline_ns)
        baseline_end_ns = baseline_ns + int(plan.baseline_s * 1e9)
        await self.wait_until(NO_FLOOD, baseline_ns, baseline_end_ns)
        phases = [Phase(NO_FLOOD, baseline_ns, baseline_end_ns, baseline_end_ns)]
        for name in plan.attacks:
            # A gap whose sends belong to no phase: those due just before an attack began
            # would otherwise carry its stall into the phase before.
            now = time.monotonic_ns()
            await self.wait_until("settling", now, now + int(plan.settle_s * 1e9))
            phases.append(await self.attack(name))
        return phases


async def run_flood(
    plan: FloodPlan,
    services: Services,
    hub_settings: dict[str, str],
    out_dir: Path,
    console: Console,
) -> tuple[dict[str, Any], Path, Path]:
    """The whole run; returns the report and its JSON and PNG files."""
    started = datetime.now(UTC)
    console.print(f"creating {plan.members + 1} users and their room ...")
    population = await populate(
        services.database_url,
        services.jwt_secret,
        Workload(
            description="flood",
            clients=plan.members + 1,  # the last one floods
            rooms=1,
            senders=0,
            users=plan.members + 1,
            duration=plan.planned_s + len(plan.attacks) * plan.recover_s,
        ),
    )
    hub = await start_servers("pawhub", 1, services, out_dir / "logs", hub_settings)
    sampler = ProcessSampler()
    sampler.watch("hub", hub.pids)
    sampler.start()
    processes: _Processes | None = None
    try:
        [url] = hub.urls
        room_plan = RoomPlan(
            url,
            population.rooms[0],
            population.tokens[: plan.members],
            plan.rate,
            plan.healthz_every_s,
        )
        flooder_plan = FlooderPlan(url, population.rooms[0], population.tokens[-1], plan.budgets)
        console.print(f"hub at {url}; connecting {plan.members} members ...")
        processes = _Processes(room_plan, flooder_plan)
        for group, pid in processes.pids.items():
            sampler.watch(group, [pid])
        ready = await processes.expect("flooder ready", "connected", timeout=_CONNECT_WITHIN_S)
        _, connected, errors = ready["connected"]
        if connected < plan.members:
            raise ProcessFailed(f"only {connected} of {plan.members} members joined: {errors}")
        with _ProgressView(console, processes) as view:
            phases = await _Conductor(plan, processes, view).run()
        processes.flooder_pipe.send(None)
        processes.room_pipe.send(time.monotonic_ns())
        _, room = (await processes.expect("room result", timeout=_CONNECT_WITHIN_S))["room result"]
    finally:
        await sampler.stop()
        if processes is not None:
            processes.stop()
        hub.stop()
    room_result: RoomResult = room
    document = build_report(plan, started, hub_settings, phases, room_result, sampler)
    print_summary(console, document)
    json_path, png_path = write_report(out_dir, document)
    console.print(f"report: {json_path}\nchart:  {png_path}")
    return document, json_path, png_path
