"""The summary table a run prints: one column per run, and pawhub / node where both ran."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _ms(run: dict[str, Any], key: str) -> str:
    value = run["latency_ms"].get(key)
    return "-" if value is None else f"{value:,.1f}"


_ROWS: list[tuple[str, Any]] = [
    ("clients connected", lambda r: f"{r['clients']['connected']:,} / {r['clients']['planned']:,}"),
    ("connects/s", lambda r: f"{r['connect']['per_s']:,.0f}"),
    ("connect p99 (ms)", lambda r: f"{r['connect']['latency_ms'].get('p99', 0):,.1f}"),
    ("offered deliveries/s", lambda r: f"{r['offered_deliveries_per_s']:,.0f}"),
    ("deliveries/s", lambda r: f"{r['deliveries_per_s']:,.0f}"),
    ("latency p50 (ms)", lambda r: _ms(r, "p50")),
    ("latency p95 (ms)", lambda r: _ms(r, "p95")),
    ("latency p99 (ms)", lambda r: _ms(r, "p99")),
    ("latency max (ms)", lambda r: _ms(r, "max")),
    ("ack p99 (ms)", lambda r: f"{r['ack_latency_ms'].get('p99', 0):,.1f}"),
    ("lost / duplicated", lambda r: f"{r['lost']:,} / {r['duplicated']:,}"),
    ("errors", lambda r: f"{sum(r['errors'].values()):,}"),
    ("server CPU % (mean)", lambda r: f"{r['server']['cpu_percent_mean']:.0f}"),
    (
        "server CPU ms / 1,000 deliveries",
        lambda r: f"{r['server']['cpu_ms_per_1000_deliveries']:.1f}",
    ),
    ("server RSS peak (MB)", lambda r: f"{r['server']['rss_mb_peak']:,.1f}"),
    ("server KB / connection", lambda r: f"{r['server']['rss_kb_per_connection']:,.1f}"),
    ("tester CPU % (mean)", lambda r: f"{r['tester']['cpu_percent_mean']:.0f}"),
]

_RATIO_ROWS = {
    "deliveries/s": "deliveries_per_s",
    "latency p50 (ms)": "latency_p50",
    "latency p95 (ms)": "latency_p95",
    "latency p99 (ms)": "latency_p99",
    "server KB / connection": "server_rss_kb_per_connection",
    "server CPU ms / 1,000 deliveries": "server_cpu_ms_per_1000_deliveries",
    "connects/s": "connects_per_s",
}


def _storm(run: dict[str, Any], cell: Any) -> str:
    storm = run.get("storm")
    return "-" if not storm else str(cell(storm))


_STORM_ROWS: list[tuple[str, Any]] = [
    ("storm: hub 0 went by", lambda s: s["by"]),
    ("storm: clients dropped", lambda s: f"{s['dropped']:,}"),
    ("storm: recovered", lambda s: f"{s['recovered']:,} ({s['not_recovered']:,} not)"),
    (
        "storm: recovery p50 / p99 / last (s)",
        lambda s: (
            " / ".join(f"{s['recovery_s'][k]:.2f}" for k in ("p50", "p99", "last"))
            if "recovery_s" in s
            else "-"
        ),
    ),
    ("storm: reconnects/s", lambda s: f"{s.get('reconnects_per_s', 0):,.0f}"),
    ("storm: messages caught up", lambda s: f"{s['caught_up_messages']:,}"),
    (
        "storm: hub CPU ms / recovery",
        lambda s: (
            f"{s['server_cpu_ms_per_recovery']:.2f}" if "server_cpu_ms_per_recovery" in s else "-"
        ),
    ),
    (
        "storm: live p99 / max (ms)",
        lambda s: (
            f"{s['live_latency_ms'].get('p99', 0):,.1f} / {s['live_latency_ms'].get('max', 0):,.1f}"
        ),
    ),
]


def print_summary(console: Console, document: dict[str, Any]) -> None:
    runs: list[dict[str, Any]] = document["runs"]
    table = Table(title=f"pawhub bench chat: {document['workload']['description']}")
    table.add_column("")
    for index, run in enumerate(runs):
        table.add_column(f"{run['target']} #{index + 1}", justify="right")
    found_ratios = document.get("ratios")
    if found_ratios:
        table.add_column("pawhub / node", justify="right", style="bold")
    for label, cell in _ROWS:
        row = [label, *(cell(run) for run in runs)]
        if found_ratios:
            ratio = found_ratios.get(_RATIO_ROWS.get(label, ""))
            row.append("" if ratio is None else f"{ratio:.2f}x")
        table.add_row(*row)
    if any("storm" in run for run in runs):
        for label, cell in _STORM_ROWS:
            table.add_row(label, *(_storm(run, cell) for run in runs))
    console.print(table)
    for run in runs:
        if run["errors"]:
            console.print(f"[yellow]{run['target']} errors:[/] {run['errors']}")
