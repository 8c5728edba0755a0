"""Per-phase figures of a flood run: the table, the JSON report and the PNG."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from statistics import fmean
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.chat import histogram
from bench.chat.report import machine, write_json_and_plot
from bench.chat.sampler import ProcessSampler
from bench.flood.attacks import Outcome
from bench.flood.plan import ACK_P99_RATIO_GOAL, HEALTHZ_MAX_GOAL_MS, FloodPlan
from bench.flood.plot import plot_flood
from bench.flood.room import ANSWERED, NOT_SENT, UNANSWERED, RoomResult

_MB = 1024 * 1024


@dataclass(frozen=True)
class Phase:
    """A phase's window: its legitimate sends are those due in [start, end); an attack's
    phase runs on after the attack until the hub answered everyone promptly again."""

    name: str
    start_ns: int
    attack_end_ns: int
    end_ns: int
    recovered_s: float | None = None  # after the attack; None: not within recover_s
    outcome: Outcome | None = None


def _acks(phase: Phase, room: RoomResult) -> dict[str, Any]:
    sends = [send for send in room.sends if phase.start_ns <= send[0] < phase.end_ns]
    outcomes = Counter(outcome for _, _, outcome in sends)
    latency = histogram.new_histogram()
    for _, latency_us, outcome in sends:
        if outcome != NOT_SENT:  # unanswered: the wait until given up on, a lower bound
            latency.record_value(latency_us)
    return {
        "due": len(sends),
        "answered": outcomes.pop(ANSWERED, 0),
        "unanswered": outcomes.pop(UNANSWERED, 0),
        "not_sent": outcomes.pop(NOT_SENT, 0),
        "refused": dict(outcomes),
        "latency_ms": histogram.summary_ms(latency),
    }


def _healthz(phase: Phase, room: RoomResult) -> dict[str, Any]:
    probes = [probe for probe in room.probes if phase.start_ns <= probe[0] < phase.end_ns]
    latency = histogram.new_histogram()
    for _, latency_us, _ in probes:
        latency.record_value(latency_us)
    return {
        "probes": len(probes),
        "failed": sum(1 for _, _, status in probes if status != 200),
        "latency_ms": histogram.summary_ms(latency),
    }


def _process(sampler: ProcessSampler, group: str, phase: Phase) -> dict[str, float]:
    samples = sampler.samples.get(group)
    start, end = phase.start_ns / 1e9, phase.end_ns / 1e9
    inside = (
        [
            (cpu, rss)
            for t, cpu, rss in zip(
                samples.seconds, samples.cpu_percent, samples.rss_bytes, strict=True
            )
            if start <= t <= end
        ]
        if samples
        else []
    )
    if not inside:
        return {"cpu_percent_mean": 0.0, "rss_mb_max": 0.0}
    return {
        "cpu_percent_mean": round(fmean(cpu for cpu, _ in inside), 1),
        "rss_mb_max": round(max(rss for _, rss in inside) / _MB, 1),
    }


def _summarize(phase: Phase, room: RoomResult, sampler: ProcessSampler) -> dict[str, Any]:
    return {
        "name": phase.name,
        "seconds": round((phase.end_ns - phase.start_ns) / 1e9, 2),
        "attack_seconds": round((phase.attack_end_ns - phase.start_ns) / 1e9, 2),
        "recovered_after_s": None if phase.recovered_s is None else round(phase.recovered_s, 2),
        "acks": _acks(phase, room),
        "healthz": _healthz(phase, room),
        "hub": _process(sampler, "hub", phase),
        "room_process": _process(sampler, "room", phase),
        "flooder_process": _process(sampler, "flooder", phase),
        "flooder": asdict(phase.outcome) if phase.outcome else None,
    }


def _judge(summary: dict[str, Any], baseline_p99: float | None) -> None:
    """Adds the ratio to the unflooded p99 and whether the issue's goals are met."""
    p99 = summary["acks"]["latency_ms"].get("p99")
    ratio = round(p99 / baseline_p99, 2) if p99 is not None and baseline_p99 else None
    summary["ack_p99_ratio"] = ratio
    healthz_max = summary["healthz"]["latency_ms"].get("max")
    summary["goals"] = {
        "ack_p99_within_20_percent": ratio is not None and ratio <= ACK_P99_RATIO_GOAL,
        "healthz_max_under_100_ms": healthz_max is not None and healthz_max < HEALTHZ_MAX_GOAL_MS,
        "every_ack_answered": summary["acks"]["answered"] == summary["acks"]["due"],
    }


def build_report(
    plan: FloodPlan,
    started: datetime,
    hub_settings: dict[str, str],
    phases: list[Phase],
    room: RoomResult,
    sampler: ProcessSampler,
) -> dict[str, Any]:
    summaries = [_summarize(phase, room, sampler) for phase in phases]
    baseline_p99 = summaries[0]["acks"]["latency_ms"].get("p99")
    for summary in summaries:
        _judge(summary, baseline_p99)
    origin = phases[0].start_ns - int(plan.warmup_s * 1e9)
    return {
        "benchmark": "flood",
        "started_at": started.isoformat(),
        "plan": plan.as_dict(),
        "hub_settings": hub_settings,
        "machine": machine(),
        "room": {
            "members": room.connected,
            "errors": room.errors,
            "disconnects": len(room.disconnects),
        },
        "phases": summaries,
        "timeline": {  # seconds since the first send; latency in ms
            "phases": [
                [
                    p.name,
                    (p.start_ns - origin) / 1e9,
                    (p.attack_end_ns - origin) / 1e9,
                    (p.end_ns - origin) / 1e9,
                ]
                for p in phases
            ],
            "acks": [
                [round((due - origin) / 1e9, 4), latency_us / 1000, outcome]
                for due, latency_us, outcome in room.sends
                if outcome != NOT_SENT
            ],
            "healthz": [
                [round((sent - origin) / 1e9, 4), latency_us / 1000, status]
                for sent, latency_us, status in room.probes
            ],
            "disconnects": [round((t - origin) / 1e9, 4) for t in room.disconnects],
        },
    }


# presentation


def _ms(figures: dict[str, Any], key: str) -> str:
    value = figures["latency_ms"].get(key)
    return "-" if value is None else f"{value:,.1f}"


def _mark(met: bool) -> str:
    return "[green]yes[/]" if met else "[red]no[/]"


def _phases_table(document: dict[str, Any]) -> Table:
    plan = document["plan"]
    table = Table(
        title=(
            f"pawhub bench flood: {plan['members']} members sending {plan['rate']:g} msg/s "
            "while one client floods (latency in ms)"
        )
    )
    table.add_column("phase")
    for column in (
        "acks due / answered",
        "ack p50",
        "ack p99",
        "ack max",
        "p99 / no flood",
        "healthz p99",
        "healthz max",
        "recovered after",
        "goals: p99, healthz, acks",
    ):
        table.add_column(column, justify="right")
    for phase in document["phases"]:
        acks, healthz, goals = phase["acks"], phase["healthz"], phase["goals"]
        answered = f"{acks['due']:,} / {acks['answered']:,}"
        if not goals["every_ack_answered"]:
            answered = f"[red]{answered}[/]"
        ratio, recovered, attack = (
            phase["ack_p99_ratio"],
            phase["recovered_after_s"],
            phase["flooder"],
        )
        healthz_max = _ms(healthz, "max")
        if healthz["failed"]:
            healthz_max += f" [red]({healthz['failed']} failed)[/]"
        table.add_row(
            phase["name"],
            answered,
            _ms(acks, "p50"),
            _ms(acks, "p99") + (" (>=)" if acks["unanswered"] else ""),
            _ms(acks, "max"),
            "-" if ratio is None else f"{ratio:.2f}x",
            _ms(healthz, "p99"),
            healthz_max,
            ""
            if attack is None
            else ("[red]not yet[/]" if recovered is None else f"{recovered:.1f} s"),
            " ".join(
                _mark(met)
                for met in (
                    goals["ack_p99_within_20_percent"] or attack is None,
                    goals["healthz_max_under_100_ms"],
                    goals["every_ack_answered"],
                )
            ),
        )
    return table


def _flooder_table(document: dict[str, Any]) -> Table:
    table = Table(title="the flooder's outcome per attack")
    table.add_column("attack")
    for column in ("sent", "MB", "acked", "refused", "unanswered", "connections (refused)"):
        table.add_column(column, justify="right")
    table.add_column("dropped by the hub (first after)")
    for phase in document["phases"]:
        if (outcome := phase["flooder"]) is None:
            continue
        closes = ", ".join(f"{count} {how}" for how, count in outcome["closed_by_hub"].items())
        if closes:
            closes += f" ({outcome['first_close_s']:.2f} s)"
        refused = ", ".join(f"{count:,} {code}" for code, count in outcome["refused"].items())
        table.add_row(
            outcome["attack"],
            f"{outcome['sent']:,}",
            f"{outcome['sent_bytes'] / _MB:,.1f}",
            f"{outcome['acked']:,}",
            refused or "0",
            f"{outcome['unanswered']:,}",
            f"{outcome['connections']:,} ({outcome['refused_connections']:,})",
            closes or "never",
        )
    return table


def print_summary(console: Console, document: dict[str, Any]) -> None:
    console.print(_phases_table(document))
    console.print(
        f"goals met: ack p99 <= {ACK_P99_RATIO_GOAL:g}x the unflooded phase's, healthz max < "
        f"{HEALTHZ_MAX_GOAL_MS:g} ms, every legitimate ack answered. (>=): some acks never "
        "came and count as the wait until given up on (a lower bound). A phase lasts from its "
        "attack's start until the acks and /healthz are prompt again (recovered after)."
    )
    for phase in document["phases"]:
        acks = phase["acks"]
        if acks["answered"] < acks["due"]:
            console.print(
                f"[red]{phase['name']}: of {acks['due']:,} legitimate sends, "
                f"{acks['unanswered']:,} unanswered, {acks['not_sent']:,} not sent "
                f"(member dropped), refused: {acks['refused'] or 0}[/]"
            )
    console.print(_flooder_table(document))
    if document["room"]["disconnects"]:
        console.print(f"[red]members dropped by the hub: {document['room']['disconnects']}[/]")


def write_report(out_dir: Path, document: dict[str, Any]) -> tuple[Path, Path]:
    return write_json_and_plot(out_dir, "flood", document, plot_flood)
