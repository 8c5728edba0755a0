"""The PNG: latency distribution (HDR percentile plot) and deliveries/s over time, per run."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt

_PERCENTILE_TICKS = (50.0, 90.0, 99.0, 99.9, 99.99)


def _tail(percentile: float) -> float:
    """HDR plots spread the tail out: x = 1 / (1 - p)."""
    return 1.0 / max(1e-6, 1.0 - percentile / 100.0)


def plot_runs(document: dict[str, Any], path: Path) -> None:
    figure, (latency_axes, rate_axes) = plt.subplots(1, 2, figsize=(14, 5.5))
    workload = document["workload"]
    for index, run in enumerate(document["runs"]):
        label = f"{run['target']} #{index + 1}"
        points = run["latency_distribution_ms"]
        if points:
            latency_axes.plot([_tail(p) for p, _ in points], [ms for _, ms in points], label=label)
        per_second = run["timeline"]["deliveries_per_s"]
        rate_axes.plot(range(len(per_second)), per_second, label=label)
    latency_axes.set_xscale("log")
    latency_axes.set_yscale("log")
    latency_axes.set_xticks([_tail(p) for p in _PERCENTILE_TICKS])
    latency_axes.set_xticklabels([f"{p:g}%" for p in _PERCENTILE_TICKS])
    latency_axes.set_xlabel("percentile")
    latency_axes.set_ylabel("end-to-end latency (ms)")
    latency_axes.set_title("latency distribution (measured window)")
    latency_axes.grid(True, which="both", alpha=0.3)
    if latency_axes.lines:
        latency_axes.legend()
    offered = document["runs"][0]["offered_deliveries_per_s"] if document["runs"] else 0
    if offered:
        rate_axes.axhline(offered, linestyle="--", color="grey", label="offered")
    rate_axes.axvspan(0, workload["warmup"], color="grey", alpha=0.15, label="warm-up")
    _storms(document["runs"], rate_axes)
    rate_axes.set_xlabel("seconds since the first send")
    rate_axes.set_ylabel("deliveries/s (at the clients)")
    rate_axes.set_title("throughput over time")
    rate_axes.grid(True, alpha=0.3)
    rate_axes.legend()
    figure.suptitle(f"pawhub bench chat: {workload['description']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _storms(runs: list[dict[str, Any]], rate_axes: Any) -> None:
    """For a storm: when hub 0 went, and its clients back and caught up since (right axis)."""
    storms = [(index, run["storm"]) for index, run in enumerate(runs) if "storm" in run]
    if not storms:
        return
    back_axes = rate_axes.twinx()
    for index, storm in storms:
        rate_axes.axvline(
            storm["at_s"], color="tab:red", linestyle=":", label=f"hub 0 {storm['by']}"
        )
        points = storm["recovered_over_time"]
        back_axes.plot(
            [t for t, _ in points],
            [back for _, back in points],
            color="tab:orange",
            label=f"#{index + 1}: clients back and caught up",
        )
    back_axes.set_ylabel("clients back and caught up (since hub 0 went)")
    back_axes.set_ylim(bottom=0)
    back_axes.legend(loc="lower right")


def plot_sweep(document: dict[str, Any], path: Path) -> None:
    """Per replica count: each replica's CPU, total deliveries/s (against K times the first),
    p99, and the publications each replica received from Redis."""
    rows = document["sweep"]
    counts = [row["hub_processes"] for row in rows]
    figure, ((cpu_axes, rate_axes), (p99_axes, received_axes)) = plt.subplots(2, 2, figsize=(13, 9))
    for row in rows:
        cpu = row["replica_cpu_percent"]
        cpu_axes.scatter([row["hub_processes"]] * len(cpu), cpu, color="tab:blue", alpha=0.5)
        heard = {
            "tab:green": row["publications_received_per_replica"],
            "tab:red": row["foreign_publications_per_replica"],
        }
        for color, counts_heard in heard.items():
            replicas = [row["hub_processes"]] * len(counts_heard)
            received_axes.scatter(replicas, counts_heard, color=color, alpha=0.5)
    cpu_axes.plot(counts, [row["replica_cpu_percent_mean"] for row in rows], marker="o")
    cpu_axes.set_ylabel("CPU % of one core, per replica")
    cpu_axes.set_title("each replica's CPU (dots) and their mean")
    rate_axes.plot(counts, [row["deliveries_per_s"] for row in rows], marker="o", label="total")
    if rows and rows[0]["hub_processes"]:
        per_copy = rows[0]["deliveries_per_s"] / rows[0]["hub_processes"]
        rate_axes.plot(counts, [per_copy * k for k in counts], "--", color="grey", label="linear")
    rate_axes.set_ylabel("deliveries/s (at the clients)")
    rate_axes.set_title("total deliveries/s")
    rate_axes.legend()
    p99_axes.plot(counts, [row["latency_p99_ms"] or 0 for row in rows], marker="o")
    p99_axes.set_ylabel("end-to-end latency p99 (ms)")
    p99_axes.set_title("p99 latency")
    received_axes.set_ylabel("publications received from Redis, per replica")
    received_axes.set_title("publications each replica hears: all (green), others' rooms (red)")
    for axes in (cpu_axes, rate_axes, p99_axes, received_axes):
        axes.set_xlabel("hub processes (one copy of the workload each)")
        axes.set_xticks(counts)
        axes.margins(y=0.1)
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
    description = document["workload"]["description"]
    title = f"pawhub bench chat, hub processes swept (per copy: {description})"
    figure.suptitle(textwrap.fill(title, 120))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
