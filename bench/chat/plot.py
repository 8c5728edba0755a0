"""The PNG: latency distribution (HDR percentile plot) and deliveries/s over time, per run."""

from __future__ import annotations

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
    rate_axes.set_xlabel("seconds since the first send")
    rate_axes.set_ylabel("deliveries/s (at the clients)")
    rate_axes.set_title("throughput over time")
    rate_axes.grid(True, alpha=0.3)
    rate_axes.legend()
    figure.suptitle(f"pawhub bench chat: {workload['description']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
