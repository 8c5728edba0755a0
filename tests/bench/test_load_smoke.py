"""A small run of `pawhub bench chat` against real hub processes: every message reaches every
member exactly once, and the report files are complete. No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from bench.chat.runner import run_bench
from bench.chat.servers import Services
from bench.chat.workload import Workload
from pawhub.settings import Settings

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def test_a_small_run_delivers_every_message_once_and_writes_its_report(
    settings: Settings, tmp_path: Path
) -> None:
    workload = Workload(
        description="pytest smoke",
        clients=20,
        rooms=2,
        senders=2,
        rate=5.0,
        duration=3.0,
        warmup=1.0,
        processes=2,
        hub_processes=2,
        users=10,
    )
    services = Services(
        database_url=settings.database_url or "",
        redis_url=settings.redis_url or "",
        redis_namespace=settings.redis_namespace,
        jwt_secret=settings.jwt_secret,
    )

    document, json_path, png_path = await run_bench(
        "smoke", workload, ["pawhub"], 1, services, tmp_path, Console(quiet=True)
    )

    [run] = document["runs"]
    assert run["clients"]["connected"] == 20
    assert run["lost"] == 0
    assert run["duplicated"] == 0
    assert run["errors"] == {}
    # 2 senders x 5 messages/s x 4 s, each delivered to the 10 members of its room.
    assert run["sent"] == 40
    assert run["deliveries"] == run["sent"] * 10
    assert run["latency_ms"]["count"] > 0
    assert run["latency_ms"]["p50"] <= run["latency_ms"]["p99"] <= run["latency_ms"]["max"]
    assert run["server"]["rss_mb_peak"] > 0
    assert json.loads(json_path.read_text()) == document
    assert png_path.read_bytes().startswith(PNG_SIGNATURE)
