"""Turning worker results into figures: the summary table, the JSON report and the PNG."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean
from typing import Any

import psutil

from bench.chat import histogram
from bench.chat.plot import plot_runs
from bench.chat.sampler import GroupSamples, ProcessSampler
from bench.chat.storm import storm_summary
from bench.chat.worker import WorkerResult
from bench.chat.workload import Workload

_MB = 1024 * 1024


@dataclass
class RunMeasurements:
    target: str
    workload: Workload
    results: list[WorkerResult]
    connect_errors: list[dict[str, int]]
    sampler: ProcessSampler
    rss_before: int
    rss_connected: int
    start_s: float  # time.monotonic() when the timetable started
    received_per_replica: list[dict[str, int]] = field(default_factory=list)  # pawhub only
    storm_killed_ns: int | None = None  # CLOCK_MONOTONIC of the storm's signal


def replica_group(replica: int) -> str:
    """The sampler's group of one server process (`server` is all of them)."""
    return f"server-{replica}"


def _in_window(samples: GroupSamples, start: float, end: float) -> list[float]:
    return [
        cpu
        for t, cpu in zip(samples.seconds, samples.cpu_percent, strict=True)
        if start <= t <= end
    ]


def _cpu(samples: GroupSamples | None, start: float, end: float) -> dict[str, float]:
    window = _in_window(samples, start, end) if samples else []
    if not window:
        return {"cpu_percent_mean": 0.0, "cpu_percent_max": 0.0}
    return {"cpu_percent_mean": round(fmean(window), 1), "cpu_percent_max": round(max(window), 1)}


def _add_up(series: list[list[int]], seconds: int) -> list[int]:
    return [sum(values) for values in zip(*series, strict=True)][:seconds]


def _cpu_ms_per_1000(cpu_percent: float, deliveries_per_s: float) -> float:
    """Server CPU time per 1,000 deliveries: percent of a core is 10 ms of CPU per second."""
    return round(cpu_percent * 10 / deliveries_per_s * 1000, 2) if deliveries_per_s else 0.0


def _replicas(measured: RunMeasurements, start: float, end: float) -> list[dict[str, Any]]:
    """Each server process's CPU and, for pawhub, the publications its fan-out received."""
    samples = measured.sampler.samples
    received = measured.received_per_replica
    return [
        {
            **_cpu(samples.get(replica_group(replica)), start, end),
            **({"publications_received": received[replica]} if replica < len(received) else {}),
        }
        for replica in range(measured.workload.hub_processes)
    ]


def _errors(measured: RunMeasurements) -> dict[str, int]:
    total: dict[str, int] = {}
    for errors in [result.errors for result in measured.results]:
        for name, count in errors.items():
            total[name] = total.get(name, 0) + count
    return dict(sorted(total.items()))


def summarize_run(measured: RunMeasurements) -> dict[str, Any]:
    workload, results = measured.workload, measured.results
    latency = histogram.merged([result.latency_histogram for result in results])
    connected = sum(result.connected for result in results)
    connect_seconds = max(result.connect_seconds for result in results)
    window_start = measured.start_s + workload.warmup
    window_end = window_start + workload.duration
    server = measured.sampler.samples.get("server")
    tester = measured.sampler.samples.get("tester")
    rss_added = measured.rss_connected - measured.rss_before
    seconds = int(workload.warmup + workload.duration) + 2  # the timetable and a little after
    deliveries_per_s = sum(result.deliveries_in_window for result in results) / workload.duration
    server_cpu = _cpu(server, window_start, window_end)
    killed_ns = measured.storm_killed_ns
    groups = measured.sampler.samples
    survivors = [
        samples
        for replica in range(1, workload.hub_processes)
        if (samples := groups.get(replica_group(replica))) is not None
    ]
    storm = (
        {
            "storm": {
                "by": workload.storm_by,
                **storm_summary(results, killed_ns, survivors, measured.start_s),
            }
        }
        if killed_ns is not None
        else {}
    )
    return {
        "target": measured.target,
        "server_processes": workload.hub_processes,
        "tester_processes": workload.processes,
        "clients": {
            "planned": workload.clients,
            "connected": connected,
            "failed": sum(result.connect_failed for result in results),
        },
        "connect": {
            "seconds": round(connect_seconds, 3),
            "per_s": round(connected / connect_seconds, 1) if connect_seconds else 0.0,
            "latency_ms": histogram.summary_ms(
                histogram.merged([result.connect_histogram for result in results])
            ),
        },
        "offered_sends_per_s": workload.offered_sends_per_s,
        "offered_deliveries_per_s": workload.offered_deliveries_per_s,
        "sent": sum(result.sent for result in results),
        "sends_per_s": round(
            sum(result.sent_in_window for result in results) / workload.duration, 1
        ),
        "deliveries": sum(result.deliveries for result in results),
        "deliveries_per_s": round(deliveries_per_s, 1),
        "latency_ms": histogram.summary_ms(latency),
        "latency_distribution_ms": histogram.distribution_ms(latency),
        "ack_latency_ms": histogram.summary_ms(
            histogram.merged([result.ack_histogram for result in results])
        ),
        "lost": sum(result.lost for result in results),
        "duplicated": sum(result.duplicated for result in results),
        "reordered": sum(result.reordered for result in results),
        "errors": _errors(measured),
        "server": {
            **server_cpu,
            "cpu_ms_per_1000_deliveries": _cpu_ms_per_1000(
                server_cpu["cpu_percent_mean"], deliveries_per_s
            ),
            "rss_mb_before_clients": round(measured.rss_before / _MB, 1),
            "rss_mb_connected": round(measured.rss_connected / _MB, 1),
            "rss_mb_peak": round(max(server.rss_bytes, default=0) / _MB, 1) if server else 0.0,
            "rss_kb_per_connection": round(rss_added / 1024 / connected, 2) if connected else 0.0,
        },
        "replicas": _replicas(measured, window_start, window_end),
        **storm,
        "tester": _cpu(tester, window_start, window_end),
        "timeline": {
            "deliveries_per_s": _add_up(
                [result.per_second_deliveries for result in results], seconds
            ),
            "sends_per_s": _add_up([result.per_second_sends for result in results], seconds),
            "latency_max_ms": [
                max(values) / 1000
                for values in zip(*[r.per_second_latency_max_us for r in results], strict=True)
            ][:seconds],
            "server_cpu_percent": [
                [round(t - measured.start_s, 2), cpu]
                for t, cpu in zip(server.seconds, server.cpu_percent, strict=True)
            ]
            if server
            else [],
        },
    }


# comparison

_RATIOS = {
    "deliveries_per_s": ("deliveries_per_s",),
    "latency_p50": ("latency_ms", "p50"),
    "latency_p95": ("latency_ms", "p95"),
    "latency_p99": ("latency_ms", "p99"),
    "server_rss_kb_per_connection": ("server", "rss_kb_per_connection"),
    "server_cpu_ms_per_1000_deliveries": ("server", "cpu_ms_per_1000_deliveries"),
    "connects_per_s": ("connect", "per_s"),
}


def _pick(run: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = run
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


def ratios(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """pawhub / node for each figure, each side averaged over its rounds."""

    def mean_of(target: str, path: tuple[str, ...]) -> float | None:
        values = [
            v for run in runs if run["target"] == target if (v := _pick(run, path)) is not None
        ]
        return fmean(values) if values else None

    found: dict[str, float | None] = {}
    for name, path in _RATIOS.items():
        ours, theirs = mean_of("pawhub", path), mean_of("node", path)
        found[name] = round(ours / theirs, 3) if ours is not None and theirs else None
    return found


# presentation


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    node = shutil.which("node")
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "node": subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
        if node
        else None,
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def write_json_and_plot(
    out_dir: Path, name: str, document: dict[str, Any], plot: Callable[[dict[str, Any], Path], None]
) -> tuple[Path, Path]:
    """`document` as NAME-<UTC stamp>.json in `out_dir`, and `plot` of it beside it as .png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = out_dir / f"{name}-{stamp}"
    json_path, png_path = stem.with_suffix(".json"), stem.with_suffix(".png")
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    plot(document, png_path)
    return json_path, png_path


def write_report(out_dir: Path, name: str, document: dict[str, Any]) -> tuple[Path, Path]:
    return write_json_and_plot(out_dir, f"chat-{name}", document, plot_runs)
