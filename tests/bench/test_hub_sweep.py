"""`pawhub bench chat --hub-processes 1 2 ...`: parsing the counts, the copies of the workload
each replica count runs (every room on one hub, the same load per hub), and a tiny sweep
against real hub processes in which no hub hears another hub's rooms."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from bench.chat.cli import chat
from bench.chat.population import Population
from bench.chat.runner import _plans
from bench.chat.servers import Services
from bench.chat.sweep import parse_hub_counts, run_sweep
from bench.chat.workload import Workload, load_scenario
from tests.bench.conftest import assert_report_files


def test_the_counts_come_spaced_or_comma_separated_and_must_be_whole_and_positive() -> None:
    assert parse_hub_counts("1", (2, 4)) == [1, 2, 4]
    assert parse_hub_counts("1,2,4", ()) == [1, 2, 4]
    assert parse_hub_counts("2, 2,1", ()) == [2, 1]
    for bad in ("0", "two", "1,-2", "1.5"):
        with pytest.raises(ValueError, match="whole numbers"):
            parse_hub_counts(bad, ())


@pytest.mark.parametrize(
    "arguments",
    [
        ["--hub-processes", "1", "2", "--compare"],
        ["--hub-processes", "1,2", "--target", "node"],
        ["--hub-processes", "0"],
        ["2", "4"],  # counts without the option
    ],
)
def test_the_command_refuses_what_a_sweep_cannot_run_before_starting_anything(
    arguments: list[str],
) -> None:
    result = CliRunner().invoke(chat, arguments)
    assert result.exit_code == 2, result.output


@pytest.mark.parametrize("copies", [1, 2, 4])
def test_each_copy_of_the_workload_sits_on_one_hub_with_its_rooms_whole(copies: int) -> None:
    workload = Workload(clients=30, rooms=5, senders=10, users=30).side_by_side(copies)
    population = Population(
        tokens=[f"user{n}" for n in range(workload.user_count)],
        rooms=[f"room{n}" for n in range(workload.rooms)],
    )
    urls = [f"http://hub{n}" for n in range(copies)]
    plans = [c for plan in _plans(workload, population, urls, "pawhub", "t") for c in plan.clients]

    hubs_of_room: dict[str, set[str]] = defaultdict(set)
    for client in plans:
        hubs_of_room[client.room].add(client.url)
    assert len(hubs_of_room) == 5 * copies
    assert all(len(hubs) == 1 for hubs in hubs_of_room.values())
    assert Counter(client.url for client in plans) == {url: 30 for url in urls}
    senders = Counter(client.url for client in plans if client.sender is not None)
    assert senders == {url: 10 for url in urls}


@pytest.mark.slow
async def test_a_tiny_sweep_reports_each_replica_and_no_hub_hears_another_hubs_rooms(
    services: Services, tmp_path: Path
) -> None:
    workload = load_scenario("smoke").with_overrides(
        clients=6, rooms=2, senders=2, rate=5.0, duration=2.0, warmup=1.0, users=6
    )

    document, json_path, png_path = await run_sweep(
        "smoke", workload, [1, 2], services, tmp_path, Console(quiet=True)
    )

    one, two = document["sweep"]
    assert (one["hub_processes"], two["hub_processes"]) == (1, 2)
    assert (one["clients"], two["clients"]) == (6, 12)
    assert len(one["replica_cpu_percent"]) == 1 and len(two["replica_cpu_percent"]) == 2
    for row in (one, two):
        assert row["lost"] == row["duplicated"] == 0
        # Each hub hears its own publications back, and none of the other hub's rooms.
        assert all(received > 0 for received in row["publications_received_per_replica"])
        assert row["foreign_publications_per_replica"] == [0] * row["hub_processes"]
    for run in document["runs"]:
        assert run["errors"] == {}
        assert run["deliveries"] == run["sent"] * 3  # rooms of 3 clients
    assert document["runs"][1]["sent"] > document["runs"][0]["sent"]
    assert_report_files(document, json_path, png_path)
