"""Coalesced catch-ups: asks in a burst make one more run, a failed run is run again until one
succeeds, and nothing runs once stopped."""

from __future__ import annotations

import asyncio

import pytest

from realtime import background
from realtime.background import Coalesced
from tests.waiting import eventually


async def test_a_burst_of_asks_while_running_makes_one_more_run() -> None:
    runs: list[int] = []
    release = asyncio.Event()

    async def run() -> None:
        runs.append(len(runs))
        await release.wait()

    coalesced = Coalesced(run, "test catch-up")
    coalesced.soon()
    await eventually(lambda: runs == [0], "the first run")
    for _ in range(100):
        coalesced.soon()
    release.set()
    await eventually(lambda: runs == [0, 1], "one more run for the hundred asks")
    await asyncio.sleep(0.05)
    assert runs == [0, 1]
    await coalesced.stop()


async def test_a_failed_run_is_run_again_until_one_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(background, "_FIRST_BACKOFF_S", 0.01)
    attempts: list[str] = []

    async def run() -> None:
        attempts.append("try")
        if len(attempts) < 3:
            raise ConnectionError("PostgreSQL is away")

    coalesced = Coalesced(run, "test catch-up")
    coalesced.soon()
    await eventually(lambda: len(attempts) == 3, "three attempts, the last one good")
    await asyncio.sleep(0.1)
    assert len(attempts) == 3  # no more once one succeeded
    await coalesced.stop()


async def test_nothing_runs_once_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(background, "_FIRST_BACKOFF_S", 0.01)
    attempts: list[str] = []

    async def run() -> None:
        attempts.append("try")
        raise ConnectionError("never works")

    coalesced = Coalesced(run, "test catch-up")
    coalesced.soon()
    await eventually(lambda: len(attempts) >= 2, "retrying")
    await coalesced.stop()
    stopped_at = len(attempts)
    coalesced.soon()
    await asyncio.sleep(0.1)
    assert len(attempts) == stopped_at
