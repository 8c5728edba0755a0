"""One benchmark run against one target, and `--compare` runs that alternate the targets."""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any
from uuid import uuid4

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from bench.chat.hub_metrics import publications_received
from bench.chat.population import Population, populate
from bench.chat.report import (
    RunMeasurements,
    machine,
    ratios,
    replica_group,
    summarize_run,
    write_report,
)
from bench.chat.sampler import ProcessSampler
from bench.chat.servers import Services, start_servers
from bench.chat.table import print_summary
from bench.chat.worker import ClientPlan, WorkerPlan, WorkerResult, work
from bench.chat.workload import STORM_SIGNALS, Workload

_CONNECT_WITHIN_S = 600.0
_SETTLE_S = 1.0  # after connecting, before the baseline is read and sending starts


class WorkerFailed(RuntimeError):
    """A load-generator process crashed; the message holds its traceback."""


def _plans(
    workload: Workload, population: Population, urls: list[str], target: str, run_tag: str
) -> list[WorkerPlan]:
    clients: list[list[ClientPlan]] = [[] for _ in range(workload.processes)]
    survivors = urls[1:]
    for client in range(workload.clients):
        on_victim = workload.storm and workload.hub_of(client) == 0
        clients[client % workload.processes].append(
            ClientPlan(
                index=client,
                url=urls[workload.hub_of(client)],
                token=population.tokens[workload.user_of(client)],
                room=population.rooms[workload.room_of(client)],
                sender=workload.sender_of(client),
                fallback_url=survivors[client % len(survivors)] if on_victim else None,
            )
        )
    return [
        WorkerPlan(
            worker=worker,
            run_tag=run_tag,
            clients=clients[worker],
            senders_total=workload.senders,
            rate=workload.rate,
            body_bytes=workload.body_bytes,
            warmup=workload.warmup,
            duration=workload.duration,
            drain=workload.drain,
            connect_concurrency=workload.connect_concurrency,
            numbered_by_seq=target == "pawhub",
            storm_at=workload.storm_at if workload.storm else None,
        )
        for worker in range(workload.processes)
    ]


class _Workers:
    """The worker processes and the two channels to them."""

    def __init__(self, plans: list[WorkerPlan]) -> None:
        context = multiprocessing.get_context("spawn")
        self.events: Queue[Any] = context.Queue()
        self.pipes: list[Connection] = []
        self.processes: list[BaseProcess] = []
        for plan in plans:
            ours, theirs = context.Pipe()
            process = context.Process(target=work, args=(plan, self.events, theirs), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    async def next_event(self, timeout: float) -> tuple[Any, ...] | None:
        """The next event, or None after `timeout` seconds of silence."""
        try:
            event: tuple[Any, ...] = await asyncio.to_thread(self.events.get, True, timeout)
        except queue.Empty:
            if dead := [process.pid for process in self.processes if not process.is_alive()]:
                raise WorkerFailed(f"worker processes {dead} died without a word") from None
            return None
        if event[0] == "failed":
            raise WorkerFailed(f"worker {event[1]} failed:\n{event[2]}")
        return event

    async def gather(
        self, kind: str, timeout: float, on_other: Callable[[tuple[Any, ...]], None]
    ) -> list[tuple[Any, ...]]:
        """One event of `kind` from every worker; other events go to `on_other`."""
        found: list[tuple[Any, ...]] = []
        deadline = time.monotonic() + timeout
        while len(found) < len(self.processes):
            event = await self.next_event(max(1.0, deadline - time.monotonic()))
            if event is None:
                raise WorkerFailed(f"the workers sent no {kind!r} within {timeout:.0f} s")
            if event[0] == kind:
                found.append(event)
            else:
                on_other(event)
        return found

    def tell_all(self, message: object) -> None:
        for pipe in self.pipes:
            pipe.send(message)

    def stop(self) -> None:
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()


class _ProgressView:
    """A progress bar over the timetable with live deliveries/s, fed by worker progress."""

    def __init__(self, console: Console, target: str, seconds: float) -> None:
        self._progress = Progress(
            TextColumn(f"[bold]{target:>6}"),
            BarColumn(),
            TextColumn("{task.fields[rate]:>10} deliveries/s"),
            TextColumn("sent {task.fields[sent]:>8}  errors {task.fields[errors]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("run", total=seconds, rate="-", sent=0, errors=0)
        self._totals: dict[int, tuple[int, int, int]] = {}
        self._last = (time.monotonic(), 0)

    def __enter__(self) -> _ProgressView:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def tick(self, elapsed: float) -> None:
        self._progress.update(self._task, completed=elapsed)

    def update(self, event: tuple[Any, ...]) -> None:
        if event[0] != "progress":
            return
        _, worker, delivered, sent, errors = event
        self._totals[worker] = (delivered, sent, errors)
        now, before = time.monotonic(), self._last
        delivered_all = sum(total[0] for total in self._totals.values())
        if now - before[0] >= 1.0:
            self._last = (now, delivered_all)
            rate = f"{(delivered_all - before[1]) / (now - before[0]):,.0f}"
            self._progress.update(self._task, rate=rate)
        self._progress.update(
            self._task,
            sent=sum(total[1] for total in self._totals.values()),
            errors=sum(total[2] for total in self._totals.values()),
        )


async def run_target(
    target: str,
    workload: Workload,
    services: Services,
    population: Population,
    log_dir: Path,
    console: Console,
) -> dict[str, Any]:
    """Start `target`'s servers, drive the workload through them, and summarize."""
    servers = await start_servers(target, workload.hub_processes, services, log_dir)
    sampler = ProcessSampler()
    sampler.watch("server", servers.pids)
    for replica, pid in enumerate(servers.pids):
        sampler.watch(replica_group(replica), [pid])
    sampler.start()
    workers: _Workers | None = None
    received: list[dict[str, int]] = []
    killer: asyncio.Task[int] | None = None
    try:
        await asyncio.sleep(_SETTLE_S)
        rss_before = sampler.rss("server")
        plans = _plans(workload, population, servers.urls, target, uuid4().hex[:8])
        console.print(f"[bold]{target}[/]: connecting {workload.clients:,} clients ...")
        workers = _Workers(plans)
        sampler.watch("tester", [p.pid for p in workers.processes if p.pid is not None])
        connected = await workers.gather("connected", _CONNECT_WITHIN_S, lambda _: None)
        await asyncio.sleep(_SETTLE_S)
        rss_connected = sampler.rss("server")
        start_ns = time.monotonic_ns() + 500_000_000
        workers.tell_all(start_ns)
        if workload.storm:
            storm_ns = start_ns + int((workload.warmup + workload.storm_at) * 1e9)
            signum = STORM_SIGNALS[workload.storm_by]
            killer = asyncio.create_task(signal_at(servers.processes[0], signum, storm_ns))
        seconds = workload.warmup + workload.duration
        with _ProgressView(console, target, seconds) as view:
            sent = await _follow(workers, view, start_ns, seconds)
        finals: dict[str, dict[str, int]] = {}
        for event in sent:
            for room, streams in event[2].items():
                for stream, final in streams.items():
                    room_finals = finals.setdefault(room, {})
                    room_finals[stream] = max(room_finals.get(stream, 0), final)
        workers.tell_all(finals)
        results = await workers.gather("result", workload.drain + 60, lambda _: None)
        if target == "pawhub":
            received = await publications_received(servers.urls)
    finally:
        if killer is not None and not killer.done():
            killer.cancel()
        await sampler.stop()
        if workers is not None:
            workers.stop()
        servers.stop()
    worker_results: list[WorkerResult] = [event[2] for event in results]
    return summarize_run(
        RunMeasurements(
            target=target,
            workload=workload,
            results=worker_results,
            connect_errors=[event[3] for event in connected],
            sampler=sampler,
            rss_before=rss_before,
            rss_connected=rss_connected,
            start_s=start_ns / 1e9,
            received_per_replica=received,
            storm_killed_ns=killer.result() if killer is not None else None,
        )
    )


async def signal_at(process: subprocess.Popen[bytes], signum: int, at_ns: int) -> int:
    """Send `signum` to `process` at CLOCK_MONOTONIC `at_ns`; when it was sent."""
    await asyncio.sleep(max(0.0, (at_ns - time.monotonic_ns()) / 1e9))
    process.send_signal(signum)
    return time.monotonic_ns()


async def _follow(
    workers: _Workers, view: _ProgressView, start_ns: int, seconds: float
) -> list[tuple[Any, ...]]:
    """Show progress until every worker has sent its last message and had its acks."""
    sent: list[tuple[Any, ...]] = []
    while len(sent) < len(workers.processes):
        view.tick(min(seconds, max(0.0, (time.monotonic_ns() - start_ns) / 1e9)))
        event = await workers.next_event(timeout=0.25)
        if event is None:
            continue
        if event[0] == "sent":
            sent.append(event)
        view.update(event)
    return sent


def order_of_targets(targets: list[str], rounds: int) -> list[str]:
    """Alternate the targets round by round (A B, B A, ...) so drift hits both alike."""
    order: list[str] = []
    for round_number in range(rounds):
        order.extend(targets if round_number % 2 == 0 else reversed(targets))
    return order


async def run_bench(
    name: str,
    workload: Workload,
    targets: list[str],
    rounds: int,
    services: Services,
    out_dir: Path,
    console: Console,
) -> tuple[dict[str, Any], Path, Path]:
    """Every run of an invocation, on one population; returns the report and its files."""
    started = datetime.now(UTC)
    console.print(f"creating {workload.user_count:,} users and {workload.rooms:,} rooms ...")
    population = await populate(services.database_url, services.jwt_secret, workload)
    runs = []
    for target in order_of_targets(targets, rounds):
        runs.append(
            await run_target(target, workload, services, population, out_dir / "logs", console)
        )
    document: dict[str, Any] = {
        "scenario": name,
        "started_at": started.isoformat(),
        "workload": workload.as_dict(),
        "offered_deliveries_per_s": workload.offered_deliveries_per_s,
        "machine": machine(),
        "runs": runs,
    }
    if len(set(targets)) > 1:
        document["ratios"] = ratios(runs)
    print_summary(console, document)
    json_path, png_path = write_report(out_dir, f"{name}-{'-'.join(targets)}", document)
    console.print(f"report: {json_path}\nchart:  {png_path}")
    return document, json_path, png_path
