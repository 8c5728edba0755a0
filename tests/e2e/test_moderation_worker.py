"""A scoring worker killed mid-batch loses nothing: another claims and scores what it left."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import asyncpg
import psutil
import pytest
import redis.asyncio as aioredis

from domain.chat.messages import store_message
from domain.identity.tokens import Principal
from moderation.pipeline import GROUP
from pawhub.resources import open_redis
from pawhub.settings import Settings
from realtime.handoff import ModerationHandoff
from tests.waiting import eventually

pytestmark = pytest.mark.slow

MESSAGES = 600


def start_worker(settings: Settings, consumer: str) -> subprocess.Popen[bytes]:
    env = settings.child_environment()
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pawhub",
            "moderation",
            "worker",
            "--consumer",
            consumer,
            "--batch-size",
            "200",
            "--reclaim-after",
            "1",
        ],
        env=env,
    )


async def flags_in(pool: asyncpg.Pool, room: Any) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM flags WHERE room = $1", room))


async def test_killing_the_worker_mid_batch_loses_no_message(
    settings: Settings, room: Any, pool: asyncpg.Pool
) -> None:
    # A stream of its own: no other test's worker may take these entries.
    settings = settings.model_copy(update={"redis_namespace": settings.redis_namespace + "-kill"})
    room_id, owner, _ = room
    sender = Principal(user_id=owner[0].id, name=owner[0].name, role=owner[0].role)
    redis: aioredis.Redis = open_redis(settings.redis_url or "")
    handoff = ModerationHandoff(redis, settings.redis_namespace)
    await handoff.start()
    for i in range(MESSAGES):
        message, _ = await store_message(
            pool, room_id, sender, f"t{i}", f"f4ck you {i}, you useless quack"
        )
        handoff.submit(message)

    first = start_worker(settings, "doomed")
    try:
        async with asyncio.timeout(60):
            while await flags_in(pool, room_id) == 0:
                await asyncio.sleep(0.01)
        scorers = psutil.Process(first.pid).children(recursive=True)
        assert scorers, "the worker scores in processes of its own"
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        # Nothing of the killed worker is left running (its scoring pool ends with it).
        await eventually(lambda: all(map(_ended, scorers)), "the killed worker's pool gone")
        pending = await redis.xpending(handoff.stream, GROUP)
        assert pending["pending"] > 0, "the kill should land mid-batch"
        assert await flags_in(pool, room_id) < MESSAGES

        second = start_worker(settings, "survivor")
        try:
            async with asyncio.timeout(90):
                while await flags_in(pool, room_id) < MESSAGES:
                    await asyncio.sleep(0.2)
                while (await redis.xpending(handoff.stream, GROUP))["pending"] > 0:
                    await asyncio.sleep(0.2)
        finally:
            second.terminate()
            assert second.wait(30) == 0
        per_message = await pool.fetch(
            "SELECT message_id, count(*) AS n FROM flags WHERE room = $1 GROUP BY message_id",
            room_id,
        )
        assert len(per_message) == MESSAGES and {row["n"] for row in per_message} == {1}
    finally:
        if first.poll() is None:
            first.kill()
        await handoff.stop()
        await redis.aclose()


def _ended(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
