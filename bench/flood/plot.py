"""The PNG: each legitimate ack's latency and each /healthz probe's over time, the attack
phases shaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt

from bench.flood.plan import HEALTHZ_MAX_GOAL_MS, NO_FLOOD
from bench.flood.room import ANSWERED

_COLOURS = ("tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def plot_flood(document: dict[str, Any], path: Path) -> None:
    timeline = document["timeline"]
    figure, (acks_axes, healthz_axes) = plt.subplots(2, 1, figsize=(14, 8), sharex=True)
    answered = [(t, ms) for t, ms, outcome in timeline["acks"] if outcome == ANSWERED]
    other = [(t, ms) for t, ms, outcome in timeline["acks"] if outcome != ANSWERED]
    if answered:
        acks_axes.scatter(*zip(*answered, strict=True), s=4, label="ack")
    if other:
        acks_axes.scatter(
            *zip(*other, strict=True), s=14, marker="x", color="red", label="refused or unanswered"
        )
    probes = timeline["healthz"]
    if probes:
        healthz_axes.plot(  # markers: a stalled probe is one point, not a slope
            [t for t, _, _ in probes],
            [ms for _, ms, _ in probes],
            marker=".",
            markersize=2,
            linewidth=0.4,
        )
    healthz_axes.axhline(
        HEALTHZ_MAX_GOAL_MS, linestyle="--", color="grey", label=f"goal: {HEALTHZ_MAX_GOAL_MS:g} ms"
    )
    attacks = [phase for phase in timeline["phases"] if phase[0] != NO_FLOOD]
    for index, (name, start, attack_end, end) in enumerate(attacks):
        colour = _COLOURS[index % len(_COLOURS)]
        for axes in (acks_axes, healthz_axes):
            axes.axvspan(
                start,
                attack_end,
                color=colour,
                alpha=0.18,
                label=name if axes is acks_axes else None,
            )
            if end > attack_end:
                axes.axvspan(attack_end, end, color=colour, alpha=0.07)
    for axes, label in ((acks_axes, "legitimate send's ack (ms)"), (healthz_axes, "/healthz (ms)")):
        axes.set_yscale("log")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(loc="upper left", fontsize="small")
    healthz_axes.set_xlabel("seconds since the first send (shaded: attacks; pale: until recovered)")
    plan = document["plan"]
    figure.suptitle(
        f"pawhub bench flood: {plan['members']} members at {plan['rate']:g} msg/s, "
        "one client flooding"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
