"""Background loops of `/rtc` stop when asked, even when a step swallows the cancellation (as
aioice's `Connection.close` does while a departure closes a member's SFU connection): a hub
whose reaper is mid-reap stops promptly."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from types import CoroutineType
from typing import Any

import asyncpg
import pytest

from bench.media.consults import make_video_consult
from bench.media.rtc_client import RtcClient
from pawhub.settings import Settings
from realtime.background import every
from tests.conftest import start_hub
from tests.signaling.rtc_client import join, use_loopback_ice
from tests.waiting import eventually

STOP_BOUND_S = 10  # far beyond a clean stop; a loop that ignores its cancellation never stops


async def finishes(stopping: Coroutine[Any, Any, None]) -> bool:
    """Whether `stopping` finishes within STOP_BOUND_S (not waited for beyond: wait_for would
    wait for ever on a stop that cannot be cancelled)."""
    done, _ = await asyncio.wait({asyncio.ensure_future(stopping)}, timeout=STOP_BOUND_S)
    return bool(done)


async def test_a_loop_whose_step_swallows_the_cancellation_still_stops() -> None:
    steps = 0
    in_step = asyncio.Event()

    async def step() -> None:
        nonlocal steps
        steps += 1
        in_step.set()
        inner = asyncio.create_task(asyncio.sleep(3600))
        with contextlib.suppress(asyncio.CancelledError):
            await inner  # the cancellation of the loop lands here, and is swallowed

    loop = every(0.01, step, "test-loop")
    loop.start()
    await in_step.wait()
    assert await finishes(loop.stop())
    assert steps == 1


async def test_a_failing_step_does_not_end_the_loop() -> None:
    steps = 0

    async def step() -> None:
        nonlocal steps
        steps += 1
        raise RuntimeError("Redis is down")

    loop = every(0.01, step, "test-loop")
    loop.start()
    await eventually(lambda: steps >= 3, "three failing steps")
    assert await finishes(loop.stop())


def awaiting(task: asyncio.Task[Any]) -> list[str]:
    """The qualified names of the coroutines `task` is suspended in, outermost first."""
    names: list[str] = []
    awaited: object = task.get_coro()
    while isinstance(awaited, CoroutineType):
        names.append(awaited.cr_code.co_qualname)
        awaited = awaited.cr_await
    return names


def reapers() -> set[asyncio.Task[Any]]:
    return {task for task in asyncio.all_tasks() if task.get_name() == "rtc-reaper"}


async def test_a_hub_whose_reaper_is_closing_an_sfu_connection_stops(
    pool: asyncpg.Pool, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_loopback_ice(monkeypatch)
    consult = await make_video_consult(pool, settings.jwt_secret)
    others = reapers()
    # A Redis namespace of its own: no other hub's reaper takes the departure.
    alone = {"rtc_reconnect_grace_s": 0.2, "redis_namespace": f"{settings.redis_namespace}-stop"}
    runner, url = await start_hub(settings.model_copy(update=alone))
    (reaper,) = reapers() - others
    vet = await RtcClient.connect(url, consult.vet.token)
    try:
        await join(vet, consult, mode="sfu")
        peer = vet.peer(consult.id, "sfu", 50)
        await peer.offer()
        await eventually(lambda: peer.connected_at is not None, "ICE with the hub's SFU")
        await vet.sio.disconnect()  # the vet drops; their media connection stays up

        # Once their grace is over, the reaper lets them go and closes their SFU connection.
        deadline = time.monotonic() + 60
        while "SfuRoom.remove" not in awaiting(reaper) and time.monotonic() < deadline:
            await asyncio.sleep(0)  # one turn of the loop: the reaper's every suspension is seen
        assert "SfuRoom.remove" in awaiting(reaper), "the reaper never closed the connection"
        assert await finishes(runner.cleanup()), f"the hub did not stop: {awaiting(reaper)}"
        assert reaper.done()
    finally:
        await vet.close()
