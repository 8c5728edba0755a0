"""A tiny run of `pawhub bench flood` against a real hub process: every attack is made, every
legitimate send is answered, and the report files are complete. No timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from bench.chat.servers import Services
from bench.flood.cli import HUB_SETTINGS
from bench.flood.plan import ATTACKS, NO_FLOOD, Budgets, FloodPlan
from bench.flood.run import run_flood
from tests.bench.conftest import assert_report_files

pytestmark = [pytest.mark.slow, pytest.mark.exclusive]

TINY = Budgets(
    history_events=200,
    typing_events=200,
    continuation_frames=2_000,
    binary_frames=3,
    binary_frame_bytes=100_000,
)


async def test_a_tiny_flood_run_answers_every_legitimate_send_and_reports_each_attack(
    services: Services, tmp_path: Path
) -> None:
    plan = FloodPlan(
        members=3,
        rate=3.0,
        warmup_s=0.5,
        baseline_s=1.5,
        attack_s=1.5,
        settle_s=0.5,
        recover_s=30.0,
        budgets=TINY,
    )

    document, json_path, png_path = await run_flood(
        plan, services, HUB_SETTINGS, tmp_path, Console(quiet=True)
    )

    assert [phase["name"] for phase in document["phases"]] == [NO_FLOOD, *ATTACKS]
    assert document["room"] == {"members": 3, "errors": {}, "disconnects": 0}
    for phase in document["phases"]:
        acks = phase["acks"]
        assert acks["due"] > 0
        assert acks["answered"] == acks["due"], phase
        assert acks["refused"] == {}
        assert phase["goals"]["every_ack_answered"]
        latency = acks["latency_ms"]
        assert latency["p50"] <= latency["p99"] <= latency["max"]
        assert phase["ack_p99_ratio"] is not None
        assert phase["healthz"]["probes"] > 0
        assert phase["healthz"]["failed"] == 0
    assert document["phases"][0]["flooder"] is None
    outcomes = {phase["name"]: phase["flooder"] for phase in document["phases"][1:]}
    for attack in ("history", "typing"):
        outcome = outcomes[attack]
        assert 0 < outcome["sent"] <= 200
        answered = outcome["acked"] + sum(outcome["refused"].values())
        assert answered + outcome["unanswered"] == outcome["sent"]
    for attack in ("continuation", "binary"):
        assert outcomes[attack]["connections"] >= 1
        assert outcomes[attack]["sent_bytes"] > 0
    assert outcomes["binary"]["sent"] <= 3
    assert_report_files(document, json_path, png_path)
