"""A small run of `pawhub bench chat` against real hub processes: every message reaches every
member exactly once, and the report files are complete. No timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from bench.chat.runner import run_bench
from bench.chat.servers import Services
from bench.chat.workload import load_scenario
from tests.bench.conftest import assert_report_files

pytestmark = pytest.mark.slow


async def test_a_small_run_delivers_every_message_once_and_writes_its_report(
    services: Services, tmp_path: Path
) -> None:
    workload = load_scenario("smoke").with_overrides(processes=2, hub_processes=2, users=10)

    document, json_path, png_path = await run_bench(
        "smoke", workload, ["pawhub"], 1, services, tmp_path, Console(quiet=True)
    )

    [run] = document["runs"]
    assert run["clients"]["connected"] == 20
    assert run["lost"] == 0
    assert run["duplicated"] == 0
    assert run["errors"] == {}
    # The smoke scenario: 2 senders x 5 messages/s x 4 s, each delivered to the 10 members
    # of its room.
    assert run["sent"] == 40
    assert run["deliveries"] == run["sent"] * 10
    assert run["latency_ms"]["count"] > 0
    assert run["latency_ms"]["p50"] <= run["latency_ms"]["p99"] <= run["latency_ms"]["max"]
    assert run["server"]["rss_mb_peak"] > 0
    assert_report_files(document, json_path, png_path)


def test_options_that_change_a_scenario_are_named_in_its_description() -> None:
    scenario = load_scenario("consults")
    assert scenario.with_overrides(rate=None).description == scenario.description
    changed = scenario.with_overrides(
        clients=500, rooms=250, senders=500, rate=None, duration=scenario.duration
    )
    named = "with clients 500, rooms 250, senders 500"
    assert changed.description == f"{scenario.description}; {named}"
