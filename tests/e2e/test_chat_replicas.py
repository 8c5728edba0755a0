"""Chat across hub replicas that are real processes: fan-out, a Redis restart, a killed replica."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pawhub.settings import Settings
from tests.e2e.hubs import close_all, on_two_replicas, own_redis
from tests.recording_client import ChatClient

pytestmark = pytest.mark.slow


async def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(predicate):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


async def history_of(pool: asyncpg.Pool, room: Any) -> list[tuple[int, str]]:
    rows = await pool.fetch(
        "SELECT seq, client_id FROM messages WHERE room = $1 ORDER BY seq", room
    )
    return [(row["seq"], row["client_id"]) for row in rows]


async def test_a_member_on_one_replica_receives_what_is_sent_on_another_in_order(
    settings: Settings, room: Any
) -> None:
    room_id = room[0]
    first, second, alice, bob = await on_two_replicas(settings, room)
    try:
        for client in (alice, bob):
            await client.call("join", {"room": str(room_id)})
        for batch in range(5):
            await asyncio.gather(
                *(
                    alice.call(
                        "send",
                        {"room": str(room_id), "client_id": f"a{batch}-{i}", "body": "hello"},
                    )
                    for i in range(20)
                )
            )
        await bob.call("send", {"room": str(room_id), "client_id": "b", "body": "from bob"})
        await bob.wait_for("message", 101)
        await alice.wait_for("message", 101)
        assert bob.seqs() == list(range(1, 102))
        assert alice.seqs() == list(range(1, 102))
        assert alice.received["message"][-1]["body"] == "from bob"
    finally:
        await close_all((alice, bob), (first, second))


async def test_a_redis_restart_loses_nothing_acknowledged_and_fan_out_resumes(
    settings: Settings, room: Any, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    room_id = room[0]
    redis, server, own = own_redis(settings, tmp_path)
    first, second, alice, bob = await on_two_replicas(own, room)
    acked: list[int] = []
    sending = True

    async def send_continuously() -> None:
        index = 0
        while sending:
            ack = await alice.call(
                "send", {"room": str(room_id), "client_id": f"m{index}", "body": f"message {index}"}
            )
            assert ack["ok"], ack
            acked.append(ack["message"]["seq"])
            index += 1
            await asyncio.sleep(0.02)

    try:
        for client in (alice, bob):
            await client.call("join", {"room": str(room_id)})
        sender = asyncio.create_task(send_continuously())
        await until(lambda: len(acked) >= 20, 10, "sending before the outage")

        server.stop()
        await until(lambda: first.health() == 503, 10, "healthz reporting the outage")
        during = len(acked)
        await until(lambda: len(acked) >= during + 30, 20, "acks continuing during the outage")
        assert first.metric("pawhub_fanout_subscribed") == 0

        server = redis.start()
        restarted = asyncio.get_running_loop().time()
        for hub in (first, second):
            await until(
                lambda hub=hub: hub.metric("pawhub_fanout_subscribed") == 1,
                5,
                "fan-out resubscribed within 5 s of Redis coming back",
            )
            await until(lambda hub=hub: hub.health() == 200, 10, "healthz recovered")
        assert asyncio.get_running_loop().time() - restarted < 10
        after = len(acked)
        await until(lambda: len(acked) >= after + 20, 10, "sending after the outage")
        sending = False
        await sender

        await bob.wait_for("message", len(acked), timeout=20)
        assert bob.seqs() == acked == list(range(1, len(acked) + 1))
        assert alice.seqs() == acked
        assert [seq for seq, _ in await history_of(pool, room_id)] == acked
    finally:
        sending = False
        await close_all((alice, bob), (first, second))
        server.stop()


async def test_a_killed_replica_loses_nothing_and_its_users_go_offline(
    settings: Settings, room: Any, pool: asyncpg.Pool, make_user: Any
) -> None:
    room_id, owner, _ = room
    doomed, survivor, alice, bob = await on_two_replicas(settings, room)
    acked: dict[str, int] = {}
    attempted: list[str] = []

    async def send_until_the_replica_dies() -> None:
        index = 0
        while True:
            client_id = f"k{index}"
            attempted.append(client_id)
            try:
                ack = await alice.call(
                    "send",
                    {"room": str(room_id), "client_id": client_id, "body": "still here"},
                    timeout=3,
                )
            except Exception:  # the replica is gone mid-call
                return
            acked[client_id] = ack["message"]["seq"]
            index += 1

    try:
        for client in (alice, bob):
            await client.call("join", {"room": str(room_id)})
        sender = asyncio.create_task(send_until_the_replica_dies())
        await until(lambda: len(acked) >= 50, 15, "sending before the kill")
        os.kill(doomed.process.pid, signal.SIGKILL)
        await asyncio.wait_for(sender, 15)

        # Alice reconnects to the surviving replica, recovers, and resends what was not acked.
        with contextlib.suppress(Exception):
            await alice.close()
        seen = alice.seqs()
        alice = await ChatClient.connect(survivor.url, owner[1])
        joined = await alice.call("join", {"room": str(room_id), "since_seq": max(seen, default=0)})
        recovered = seen + [message["seq"] for message in joined["missed"]]
        assert recovered == list(range(1, joined["last_seq"] + 1))
        for client_id in attempted:
            if client_id not in acked:
                ack = await alice.call(
                    "send", {"room": str(room_id), "client_id": client_id, "body": "still here"}
                )
                acked[client_id] = ack["message"]["seq"]

        stored = await history_of(pool, room_id)
        assert sorted(client_id for _, client_id in stored) == sorted(acked)
        assert [seq for seq, _ in stored] == list(range(1, len(stored) + 1))
        assert {client_id: seq for seq, client_id in stored} == acked
        await bob.wait_for("message", len(stored), timeout=15)
        assert bob.seqs() == list(range(1, len(stored) + 1))
    finally:
        await close_all((alice, bob), (doomed, survivor))


async def test_presence_clears_within_30_s_when_a_replica_dies(
    settings: Settings, room: Any
) -> None:
    room_id, owner, vet = room
    doomed, survivor, alice, bob = await on_two_replicas(settings, room)
    try:
        await bob.call("join", {"room": str(room_id)})
        await alice.call("join", {"room": str(room_id)})
        await bob.wait_for("presence", 1)
        os.kill(doomed.process.pid, signal.SIGKILL)
        offline = await bob.wait_for("presence", 2, timeout=30)
        assert offline[1] == {"room": str(room_id), "user_id": str(owner[0].id), "online": False}
        joined = await bob.call("join", {"room": str(room_id)})
        assert joined["online"] == [str(vet[0].id)]
    finally:
        with contextlib.suppress(Exception):
            await alice.close()
        await close_all((bob,), (doomed, survivor))
