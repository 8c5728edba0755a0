"""`pawhub bench chat`: the click command (registered under `pawhub bench` by pawhub/cli.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bench.chat.runner import run_bench
from bench.chat.servers import TARGETS, bench_services
from bench.chat.sweep import parse_hub_counts, run_sweep
from bench.chat.worker import raise_file_limit
from bench.chat.workload import Workload, WorkloadError, load_scenario, per_sender_rate
from pawhub.settings import get_settings

RESULTS = Path(__file__).resolve().parent.parent / "results"


# Each overrides the scenario's value (or Workload's default) of the same name.
WORKLOAD_OPTIONS: list[tuple[str, Any, str]] = [
    ("--clients", int, "Socket.IO clients."),
    ("--rooms", int, "Rooms; client c joins room c % rooms."),
    ("--senders", int, "Clients that send (spread over the rooms)."),
    ("--rate", float, "Messages/s per sender (open loop)."),
    ("--total-rate", float, "Messages/s over all senders (instead of --rate)."),
    ("--duration", float, "Measured seconds."),
    ("--warmup", float, "Seconds of load before measuring."),
    ("--processes", int, "Load-generator processes."),
    ("--users", int, "Distinct users (clients beyond that share them)."),
    ("--body-bytes", int, "Message body size."),
    ("--connect-concurrency", int, "Connects in flight per process."),
    ("--storm-clients", int, "Clients on hub 0, SIGKILLed mid-run (a reconnect storm)."),
    ("--storm-at", float, "Seconds into the measured window when hub 0 is killed."),
    ("--storm-by", click.Choice(["kill", "drain"]), "How hub 0 goes: SIGKILL or SIGTERM."),
]


def workload_options(command: Callable[..., None]) -> Callable[..., None]:
    for option, kind, help_text in reversed(WORKLOAD_OPTIONS):
        command = click.option(option, type=kind, help=help_text)(command)
    return command


@click.command("chat")
@click.option("--target", type=click.Choice(TARGETS), default="pawhub", show_default=True)
@click.option(
    "--compare", is_flag=True, help="Run pawhub and node on the same workload, alternating."
)
@click.option("--rounds", default=1, show_default=True, help="With --compare: runs per target.")
@click.option(
    "--scenario", help="bench/scenarios/NAME.toml or .json (or a path); options override it."
)
@workload_options
@click.option(
    "--hub-processes",
    help="Server processes (one per core), sharing Redis. Several (`1 2 4` or `1,2,4`) sweep "
    "them in one pawhub run each: K processes carry K copies of the workload, each room's "
    "clients on one process; reports per-replica CPU, deliveries/s and p99, with a chart.",
)
@click.argument("more_hub_processes", nargs=-1, type=int, metavar="[HUB_PROCESSES]...")
@click.option("--out", type=click.Path(path_type=Path), default=RESULTS, show_default=True)
def chat(
    target: str,
    compare: bool,
    rounds: int,
    scenario: str | None,
    total_rate: float | None,
    hub_processes: str | None,
    more_hub_processes: tuple[int, ...],
    out: Path,
    **overrides: int | float | None,
) -> None:
    """Drive real Socket.IO clients through pawhub's hub (or the Node reference) and measure
    deliveries/s, end-to-end latency, losses, and the server's CPU and memory."""
    if more_hub_processes and hub_processes is None:
        raise click.UsageError(f"unexpected arguments {more_hub_processes}")
    try:
        counts = parse_hub_counts(hub_processes or "", more_hub_processes)
        workload = (load_scenario(scenario) if scenario else Workload()).with_overrides(**overrides)
        if total_rate is not None:
            workload = workload.with_overrides(rate=per_sender_rate(workload.senders, total_rate))
        if len(counts) == 1:
            workload = workload.with_overrides(hub_processes=counts[0])
    except (WorkloadError, TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    if len(counts) > 1 and (compare or target != "pawhub"):
        raise click.UsageError("a --hub-processes sweep runs pawhub only (no --compare)")
    if workload.storm and (compare or target != "pawhub" or len(counts) > 1):
        # The Node reference keeps no messages: a client back from a storm cannot catch up.
        raise click.UsageError("a storm runs pawhub only (no --compare, node or sweep)")
    raise_file_limit()
    settings = get_settings()
    targets = list(TARGETS) if compare else [target]
    name = Path(scenario).stem if scenario else "custom"
    console = Console()

    async def bench() -> None:
        async with bench_services(settings) as services:
            if len(counts) > 1:
                document, _, _ = await run_sweep(name, workload, counts, services, out, console)
            else:
                document, _, _ = await run_bench(
                    name, workload, targets, rounds if compare else 1, services, out, console
                )
        if any(run["lost"] or run["duplicated"] for run in document["runs"]):
            sys.exit(1)

    asyncio.run(bench())
