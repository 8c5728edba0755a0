"""`pawhub bench chat --scenario storm` in small: a real hub process SIGKILLed (or drained)
under its clients, who reconnect to the surviving hubs and catch up with `since_seq`. Every
member still ends with every message of its room exactly once. No timing is asserted."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from bench.chat.cli import chat
from bench.chat.population import Population
from bench.chat.runner import _plans, run_bench
from bench.chat.servers import Services
from bench.chat.workload import WorkloadError, load_scenario
from tests.bench.conftest import assert_report_files

SMALL_STORM = {
    "clients": 90,
    "storm_clients": 60,
    "rooms": 10,
    "senders": 10,
    "rate": 5.0,
    "duration": 6.0,
    "warmup": 1.0,
    "storm_at": 2.0,
    "users": 30,
    "connect_concurrency": 20,
}


def test_a_storm_puts_its_clients_on_hub_0_and_its_senders_on_the_survivors() -> None:
    workload = load_scenario("storm").with_overrides(**SMALL_STORM)
    population = Population(tokens=["t"] * 30, rooms=[f"r{n}" for n in range(10)])
    urls = ["hub0", "hub1", "hub2"]

    plans = _plans(workload, population, urls, "pawhub", "x")
    clients = [client for plan in plans for client in plan.clients]

    doomed = [client for client in clients if client.url == "hub0"]
    assert len(doomed) == 60 and all(client.fallback_url in urls[1:] for client in doomed)
    assert Counter(client.fallback_url for client in doomed) == {"hub1": 30, "hub2": 30}
    survivors = [client for client in clients if client.url != "hub0"]
    assert all(client.fallback_url is None for client in survivors)
    senders = sorted(c.sender for c in clients if c.sender is not None)
    assert senders == list(range(10))
    assert all(client.url != "hub0" for client in clients if client.sender is not None)
    assert {client.room for client in doomed} == set(population.rooms)


def test_a_storm_needs_a_hub_to_survive_and_runs_against_pawhub_only() -> None:
    with pytest.raises(WorkloadError, match="at least 2 hub processes"):
        load_scenario("storm").with_overrides(hub_processes=1)
    with pytest.raises(WorkloadError, match="senders"):
        load_scenario("storm").with_overrides(senders=2001)
    with pytest.raises(WorkloadError, match="storm_by"):
        load_scenario("storm").with_overrides(storm_by="unplug")
    refused = CliRunner().invoke(chat, ["--scenario", "storm", "--compare"])
    assert refused.exit_code == 2 and "pawhub only" in refused.output


@pytest.mark.slow
@pytest.mark.exclusive
@pytest.mark.parametrize("by", ["kill", "drain"])
async def test_clients_of_a_killed_or_drained_hub_come_back_and_miss_nothing(
    services: Services, tmp_path: Path, by: str
) -> None:
    workload = load_scenario("storm").with_overrides(**SMALL_STORM, storm_by=by)

    document, json_path, png_path = await run_bench(
        "storm", workload, ["pawhub"], 1, services, tmp_path, Console(quiet=True)
    )

    [run] = document["runs"]
    assert run["clients"]["connected"] == 90
    storm = run["storm"]
    assert storm["by"] == by
    assert storm["dropped"] == 60
    assert storm["recovered"] == 60 and storm["not_recovered"] == 0
    assert 0 < storm["recovery_s"]["p50"] <= storm["recovery_s"]["last"]
    assert storm["live_latency_ms"]["count"] > 0
    assert storm["server_cpu_ms_per_recovery"] > 0
    # Every member, the 60 that moved included, holds every seq of its room exactly once.
    assert run["lost"] == 0
    assert run["duplicated"] == 0
    assert run["errors"] == {}
    assert run["sent"] == 10 * 5 * 7  # the senders never noticed: their hubs lived
    assert_report_files(document, json_path, png_path)
