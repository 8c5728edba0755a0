"""What a reconnect storm (`--scenario storm`) measured: a hub SIGKILLed (or drained by SIGTERM)
under its clients, who reconnect to the surviving hubs at once and catch up with `since_seq`.

A client has recovered once its join on a surviving hub has answered and every message it
missed has arrived (the join's `missed`, asked again while `has_more`); its recovery time runs
from the signal. Live traffic meanwhile is what the senders on the surviving hubs sent within
`STORM_WINDOW_S` of the kill, timed as every delivery is.
"""

from __future__ import annotations

from typing import Any

from bench.chat import histogram
from bench.chat.sampler import GroupSamples
from bench.chat.worker import STORM_WINDOW_S, WorkerResult

_PERCENTILES = (50, 95, 99)
_STEP_S = 0.25


def _percentile(ordered: list[float], percentile: float) -> float:
    """The nearest-rank percentile of an ordered list."""
    rank = max(1, -(-len(ordered) * percentile // 100))
    return ordered[int(rank) - 1]


def _cpu_seconds(server: GroupSamples, start_s: float, end_s: float) -> float:
    """The hubs' CPU time between two CLOCK_MONOTONIC instants, from once-a-second samples
    (each the percent of a core over the second before it)."""
    return sum(
        cpu / 100
        for at, cpu in zip(server.seconds, server.cpu_percent, strict=True)
        if start_s < at <= end_s + 1
    )


def _recovered_over_time(recovered_s: list[float], killed_at_s: float) -> list[list[float]]:
    """[seconds since the first send, clients back so far], every quarter second."""
    if not recovered_s:
        return []
    steps = int(recovered_s[-1] / _STEP_S) + 2
    back, points = 0, []
    for step in range(steps):
        moment = step * _STEP_S
        while back < len(recovered_s) and recovered_s[back] <= moment:
            back += 1
        points.append([round(killed_at_s + moment, 2), back])
    return points


def storm_summary(
    results: list[WorkerResult], killed_ns: int, survivors: list[GroupSamples], start_s: float
) -> dict[str, Any]:
    """`survivors`: the CPU samples of the hubs that lived; `start_s`: CLOCK_MONOTONIC of the
    first send, which the run's timeline counts from."""
    recovered_s = sorted(
        (recovered_ns - killed_ns) / 1e9
        for result in results
        for recovered_ns in result.storm_recovered_ns
    )
    dropped = sum(result.storm_dropped for result in results)
    summary: dict[str, Any] = {
        "at_s": round(killed_ns / 1e9 - start_s, 3),
        "dropped": dropped,
        "recovered": len(recovered_s),
        "not_recovered": dropped - len(recovered_s),
        "caught_up_messages": sum(result.storm_caught_up for result in results),
        "retries": sum(result.storm_retries for result in results),
        "recovered_over_time": _recovered_over_time(recovered_s, killed_ns / 1e9 - start_s),
        "live_latency_window_s": STORM_WINDOW_S,
        "live_latency_ms": histogram.summary_ms(
            histogram.merged([result.storm_latency_histogram for result in results])
        ),
    }
    if recovered_s:
        last = recovered_s[-1]
        summary["recovery_s"] = {
            **{f"p{p}": round(_percentile(recovered_s, p), 3) for p in _PERCENTILES},
            "last": round(last, 3),
        }
        summary["reconnects_per_s"] = round(len(recovered_s) / last, 1) if last > 0 else 0.0
        if survivors:  # their CPU per client brought back (not that of a hub draining)
            killed_s = killed_ns / 1e9
            spent = sum(_cpu_seconds(hub, killed_s, killed_s + last) for hub in survivors)
            summary["server_cpu_ms_per_recovery"] = round(spent * 1000 / len(recovered_s), 3)
    return summary
