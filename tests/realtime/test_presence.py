"""Presence leases against real Redis: renewal keeps live replicas' users online, reaping takes
a dead replica's users offline, each announced once, by one replica."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

import pytest
import redis.asyncio as aioredis

from realtime import presence as presence_module
from realtime.presence import Presence


@pytest.fixture
def short_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presence_module, "LEASE_S", 1.0)
    monkeypatch.setattr(presence_module, "RENEW_EVERY_S", 0.2)
    monkeypatch.setattr(presence_module, "REAP_EVERY_S", 0.2)
    monkeypatch.setattr(presence_module, "_CHUNK", 7)  # several script calls per round


def replica(redis: aioredis.Redis, prefix: str) -> tuple[Presence, list[tuple[UUID, UUID]]]:
    departures: list[tuple[UUID, UUID]] = []

    async def went_offline(room: UUID, user: UUID) -> None:
        departures.append((room, user))

    return Presence(redis, prefix, uuid4().hex, went_offline), departures


async def kill(replica: Presence) -> None:
    """Stop renewing and reaping without giving the leases back, as a SIGKILL would."""
    for loop in replica._loops:
        await loop.stop()


async def test_a_dead_replicas_users_go_offline_once_and_live_ones_stay(
    redis: aioredis.Redis, short_leases: None
) -> None:
    prefix = f"presence-test-{uuid4().hex[:8]}"
    (alive, alive_saw), (doomed, doomed_saw) = replica(redis, prefix), replica(redis, prefix)
    rooms = [uuid4() for _ in range(20)]
    shared_user, doomed_users = uuid4(), [uuid4() for _ in rooms]
    for number, room in enumerate(rooms):
        await alive.arrive(room, shared_user, f"a{number}")
        await doomed.arrive(room, shared_user, f"d{number}")  # the same user's second device
        await doomed.arrive(room, doomed_users[number], f"e{number}")
    await alive.start()
    await doomed.start()
    await kill(doomed)

    await asyncio.sleep(3.0)  # three leases long: only renewal keeps anyone online

    assert sorted(alive_saw) == sorted(zip(rooms, doomed_users, strict=True))
    assert doomed_saw == []
    for room in rooms:
        assert await alive.online(room) == [shared_user]
        leases = await redis.zrange(f"{prefix}:presence:{room}", 0, -1)
        assert len(leases) == 1  # the dead replica's leases are gone, the live one's renewed
    await alive.stop()  # a clean stop gives its leases back at once
    for room in rooms:
        assert await redis.zcard(f"{prefix}:presence:{room}") == 0
