"""`pawhub bench flood`: the click command (registered under `pawhub bench` by pawhub/cli.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import click
from rich.console import Console

from bench.chat.servers import bench_services
from bench.chat.worker import raise_file_limit
from bench.flood.plan import ATTACKS, SEND_LIMIT_PER_10_S, Budgets, FloodPlan, PlanError
from bench.flood.run import run_flood
from pawhub.settings import get_settings

RESULTS = Path(__file__).resolve().parent.parent / "results"
# The hub runs with its own defaults, the send limit included (the chat load tests turn it off).
HUB_SETTINGS = {"CHAT_RATE_LIMIT": str(SEND_LIMIT_PER_10_S)}


def budget_options(command: Callable[..., None]) -> Callable[..., None]:
    """An option per attack budget (--history-events, ...), defaulting to Budgets' own."""
    for budget in reversed(fields(Budgets)):
        option = "--" + budget.name.replace("_", "-")
        command = click.option(option, default=budget.default, show_default=True)(command)
    return command


@click.command("flood")
@click.option("--members", default=20, show_default=True, help="Legitimate members (users).")
@click.option(
    "--rate", default=20.0, show_default=True, help="Legitimate messages/s over all members."
)
@click.option(
    "--attack",
    "attacks",
    multiple=True,
    type=click.Choice(ATTACKS),
    help="An attack to make (repeatable; default: all, in this order: " + ", ".join(ATTACKS) + ").",
)
@click.option("--baseline", default=20.0, show_default=True, help="Seconds without a flood.")
@click.option("--attack-seconds", default=20.0, show_default=True, help="Seconds of each attack.")
@click.option("--warmup", default=2.0, show_default=True, help="Seconds before measuring.")
@click.option(
    "--recover", default=60.0, show_default=True, help="Longest wait for the hub to catch up."
)
@click.option("--settle", default=2.0, show_default=True, help="Quiet seconds between attacks.")
@budget_options
@click.option("--out", type=click.Path(path_type=Path), default=RESULTS, show_default=True)
def flood(
    members: int,
    rate: float,
    attacks: tuple[str, ...],
    baseline: float,
    attack_seconds: float,
    warmup: float,
    recover: float,
    settle: float,
    out: Path,
    **budgets: int,
) -> None:
    """A room of legitimate members sending at a steady rate while one client floods the hub:
    their ack latency and /healthz's, without and with each attack. Exits 1 when a legitimate
    send went unanswered or refused."""
    try:
        plan = FloodPlan(
            members=members,
            rate=rate,
            warmup_s=warmup,
            baseline_s=baseline,
            attack_s=attack_seconds,
            attacks=tuple(attack for attack in ATTACKS if attack in attacks)
            if attacks
            else ATTACKS,
            settle_s=settle,
            recover_s=recover,
            budgets=Budgets(**budgets),
        )
    except PlanError as exc:
        raise click.UsageError(str(exc)) from exc
    raise_file_limit()
    settings = get_settings()

    async def bench() -> None:
        async with bench_services(settings) as services:
            document, _, _ = await run_flood(plan, services, HUB_SETTINGS, out, Console())
        if not all(phase["goals"]["every_ack_answered"] for phase in document["phases"]):
            sys.exit(1)

    asyncio.run(bench())
