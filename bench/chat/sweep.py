"""`pawhub bench chat --hub-processes 1 2 4`: one run per replica count K, each with K copies of
the workload side by side (`Workload.side_by_side`: every room's clients on one hub), so each
replica carries the same load in every run. If fan-out grows with rooms, not replicas, a
replica's CPU and the publications it receives stay flat as K grows while total deliveries grow
K-fold; with one shared channel every replica would receive every replica's publications."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.chat.plot import plot_sweep
from bench.chat.population import populate
from bench.chat.report import machine, write_json_and_plot
from bench.chat.runner import run_target
from bench.chat.servers import Services
from bench.chat.workload import Workload

_FOREIGN = ("applied", "not_hosted")  # publications of other replicas, as opposed to `own`


def parse_hub_counts(given: str, more: tuple[int, ...]) -> list[int]:
    """`1,2,4` or `1 2 4` (the values after the first arrive as `more`): distinct, in order."""
    counts: list[int] = []
    for part in [*given.replace(",", " ").split(), *map(str, more)]:
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"--hub-processes takes whole numbers of at least 1, not {part!r}")
        if int(part) not in counts:
            counts.append(int(part))
    return counts


def sweep_row(run: dict[str, Any]) -> dict[str, Any]:
    """One replica count's figures, per replica where it matters."""
    count = run["server_processes"]
    replicas: list[dict[str, Any]] = run["replicas"]
    cpu = [replica["cpu_percent_mean"] for replica in replicas]
    received = [replica.get("publications_received", {}) for replica in replicas]
    return {
        "hub_processes": count,
        "clients": run["clients"]["planned"],
        "deliveries_per_s": run["deliveries_per_s"],
        "deliveries_per_s_per_replica": round(run["deliveries_per_s"] / count, 1),
        "latency_p99_ms": run["latency_ms"].get("p99"),
        "replica_cpu_percent": cpu,
        "replica_cpu_percent_mean": round(fmean(cpu), 1) if cpu else 0.0,
        "cpu_ms_per_1000_deliveries": run["server"]["cpu_ms_per_1000_deliveries"],
        "publications_received_per_replica": [sum(fates.values()) for fates in received],
        "foreign_publications_per_replica": [
            sum(fates.get(fate, 0) for fate in _FOREIGN) for fates in received
        ],
        "lost": run["lost"],
        "duplicated": run["duplicated"],
    }


def print_sweep(console: Console, document: dict[str, Any]) -> None:
    table = Table(title=f"pawhub bench chat, hub processes swept: {document['scenario']}")
    for column in (
        "hubs",
        "clients",
        "deliv./s",
        "per hub",
        "p99 ms",
        "CPU % each hub",
        "CPU ms/1k deliv.",
        "heard by each hub (others')",
        "lost/dup",
    ):
        table.add_column(column, justify="right")
    for row in document["sweep"]:
        received = zip(
            row["publications_received_per_replica"],
            row["foreign_publications_per_replica"],
            strict=True,
        )
        p99 = row["latency_p99_ms"]
        table.add_row(
            str(row["hub_processes"]),
            f"{row['clients']:,}",
            f"{row['deliveries_per_s']:,.0f}",
            f"{row['deliveries_per_s_per_replica']:,.0f}",
            "-" if p99 is None else f"{p99:,.1f}",
            " ".join(f"{cpu:.0f}" for cpu in row["replica_cpu_percent"]),
            f"{row['cpu_ms_per_1000_deliveries']:.1f}",
            " ".join(f"{total:,} ({foreign:,})" for total, foreign in received),
            f"{row['lost']:,} / {row['duplicated']:,}",
        )
    console.print(table)


async def run_sweep(
    name: str,
    workload: Workload,
    counts: list[int],
    services: Services,
    out_dir: Path,
    console: Console,
) -> tuple[dict[str, Any], Path, Path]:
    """A pawhub run per count in `counts`; the report, its JSON file and its chart."""
    started = datetime.now(UTC)
    runs = []
    for count in counts:
        copies = workload.side_by_side(count)
        console.print(f"[bold]{count} hub process(es)[/]: {copies.clients:,} clients ...")
        population = await populate(services.database_url, services.jwt_secret, copies)
        runs.append(
            await run_target("pawhub", copies, services, population, out_dir / "logs", console)
        )
    document: dict[str, Any] = {
        "scenario": name,
        "started_at": started.isoformat(),
        "workload": workload.as_dict(),  # one copy: what each hub process carries
        "hub_processes": counts,
        "machine": machine(),
        "sweep": [sweep_row(run) for run in runs],
        "runs": runs,
    }
    print_sweep(console, document)
    stem = f"chat-{name}-hubs-{'-'.join(map(str, counts))}"
    json_path, png_path = write_json_and_plot(out_dir, stem, document, plot_sweep)
    console.print(f"report: {json_path}\nchart:  {png_path}")
    return document, json_path, png_path
