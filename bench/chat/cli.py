"""`pawhub bench chat`: the click command (registered under `pawhub bench` by pawhub/cli.py)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
from rich.console import Console

from bench.chat.runner import run_bench
from bench.chat.servers import TARGETS, backing_services
from bench.chat.worker import raise_file_limit
from bench.chat.workload import Workload, WorkloadError, load_scenario, per_sender_rate
from pawhub.settings import get_settings

RESULTS = Path(__file__).resolve().parent.parent / "results"


@click.command("chat")
@click.option("--target", type=click.Choice(TARGETS), default="pawhub", show_default=True)
@click.option(
    "--compare", is_flag=True, help="Run pawhub and node on the same workload, alternating."
)
@click.option("--rounds", default=1, show_default=True, help="With --compare: runs per target.")
@click.option(
    "--scenario", help="bench/scenarios/NAME.toml or .json (or a path); options override it."
)
@click.option("--clients", type=int, help="Socket.IO clients.")
@click.option("--rooms", type=int, help="Rooms; client c joins room c % rooms.")
@click.option("--senders", type=int, help="Clients that send (spread over the rooms).")
@click.option("--rate", type=float, help="Messages/s per sender (open loop).")
@click.option("--total-rate", type=float, help="Messages/s over all senders (instead of --rate).")
@click.option("--duration", type=float, help="Measured seconds.")
@click.option("--warmup", type=float, help="Seconds of load before measuring.")
@click.option("--processes", type=int, help="Load-generator processes.")
@click.option("--hub-processes", type=int, help="Server processes (one per core), sharing Redis.")
@click.option("--users", type=int, help="Distinct users (clients beyond that share them).")
@click.option("--body-bytes", type=int, help="Message body size.")
@click.option("--connect-concurrency", type=int, help="Connects in flight per process.")
@click.option("--out", type=click.Path(path_type=Path), default=RESULTS, show_default=True)
def chat(
    target: str,
    compare: bool,
    rounds: int,
    scenario: str | None,
    total_rate: float | None,
    out: Path,
    **overrides: int | float | None,
) -> None:
    """Drive real Socket.IO clients through pawhub's hub (or the Node reference) and measure
    deliveries/s, end-to-end latency, losses, and the server's CPU and memory."""
    try:
        workload = (load_scenario(scenario) if scenario else Workload()).with_overrides(**overrides)
        if total_rate is not None:
            workload = workload.with_overrides(rate=per_sender_rate(workload.senders, total_rate))
    except (WorkloadError, TypeError) as exc:
        raise click.UsageError(str(exc)) from exc
    raise_file_limit()
    settings = get_settings()
    targets = list(TARGETS) if compare else [target]
    name = Path(scenario).stem if scenario else "custom"
    console = Console()

    async def bench() -> None:
        async with backing_services(
            settings.database_url,
            settings.redis_url,
            f"{settings.redis_namespace}-bench",
            settings.jwt_secret,
            Path(settings.data_dir) / "bench",
        ) as services:
            document, _, _ = await run_bench(
                name, workload, targets, rounds if compare else 1, services, out, console
            )
        if any(run["lost"] or run["duplicated"] for run in document["runs"]):
            sys.exit(1)

    asyncio.run(bench())
