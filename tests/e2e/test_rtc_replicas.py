"""`/rtc` across hub replicas that are real processes, one of which is killed outright (SIGKILL):
its call members leave once the others' reapers see its lease expire and the reconnect grace
pass, exactly once across replicas, unless they came back on another replica meanwhile; and an
SFU room pinned to it is released so that a live replica hosts the consult's room. A replica
that drains (SIGTERM) frees its SFU rooms and tells their members itself, at once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bench.media.consults import VideoConsult, make_video_consult
from bench.media.rtc_client import RtcClient
from pawhub.settings import Settings
from tests.e2e.hubs import HubProcess, start_hub_process
from tests.signaling.rtc_client import enter_call, join

pytestmark = pytest.mark.slow

# Read by the hub processes' settings (signaling.leases and signaling.calls get them).
SHORT = {"RTC_REPLICA_LEASE_S": "2", "RTC_RECONNECT_GRACE_S": "5"}
DEADLINE_S = 60  # far beyond lease + grace + reaping


def kill(hub: HubProcess) -> None:
    os.kill(hub.process.pid, signal.SIGKILL)
    hub.process.wait()


async def test_a_killed_replicas_members_leave_once_unless_they_came_back_elsewhere(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret, invited=1)
    (guest,) = consult.invited
    doomed, survivor, spare = [await start_hub_process(settings, **SHORT) for _ in range(3)]
    vet = await RtcClient.connect(survivor.url, consult.vet.token)
    owner = await RtcClient.connect(doomed.url, consult.owner.token)
    lost_guest = await RtcClient.connect(doomed.url, guest.token)
    owner_again: RtcClient | None = None
    try:
        await enter_call(consult, vet, [(owner, consult.owner), (lost_guest, guest)])

        kill(doomed)  # no disconnect reaches anyone: the hub simply stops
        owner_again = await RtcClient.connect(spare.url, consult.owner.token)
        back = await join(owner_again, consult)  # the owner reconnects on another replica
        assert back["waiting"] is False
        assert {peer["user_id"] for peer in back["peers"]} == {consult.vet.id, guest.id}

        # The guest does not come back: after lease + grace everyone left is told, once.
        left = await vet.wait_for(
            "peer_left", lambda e: e["user_id"] == guest.id, timeout=DEADLINE_S
        )
        assert left == {"consult_id": consult.id, "user_id": guest.id}
        await owner_again.wait_for(
            "peer_left", lambda e: e["user_id"] == guest.id, timeout=DEADLINE_S
        )
        await asyncio.sleep(4)  # two replicas reap every second: room for a duplicate
        assert vet.received["peer_left"] == [left]
        assert owner_again.received["peer_left"] == [left]

        # The owner kept their place: signals reach their new connection.
        candidate = {"candidate": "", "sdpMid": "0"}
        relayed = {"consult_id": consult.id, "to": consult.owner.id, "candidate": candidate}
        assert (await vet.call("signal", relayed))["ok"]
        assert (await owner_again.wait_for("signal"))["candidate"] == candidate
    finally:
        for client in (vet, owner, lost_guest, owner_again):
            if client is not None:
                await client.close()
        for hub in (doomed, survivor, spare):
            hub.stop()


@contextlib.asynccontextmanager
async def sfu_call_hosted_by_the_owners_hub(
    settings: Settings, pool: asyncpg.Pool, environment: dict[str, str]
) -> AsyncIterator[tuple[VideoConsult, RtcClient, HubProcess]]:
    """A consult in `sfu` mode across two hub processes: the vet (yielded) on one, the owner on
    the other (its hub yielded), whose offer pins the consult's room there and is answered."""
    consult = await make_video_consult(pool, settings.jwt_secret)
    owners_hub, vets_hub = [await start_hub_process(settings, **environment) for _ in range(2)]
    vet = await RtcClient.connect(vets_hub.url, consult.vet.token)
    owner = await RtcClient.connect(owners_hub.url, consult.owner.token)
    try:
        assert (await join(vet, consult, mode="sfu"))["mode"] == "sfu"
        await enter_call(consult, vet, [(owner, consult.owner)])
        await owner.peer(consult.id, "sfu", 120).offer()
        answer = await owner.wait_for("signal", lambda e: e["from"] == "sfu")
        assert answer["description"]["type"] == "answer"
        yield consult, vet, owners_hub
    finally:
        await vet.close()
        await owner.close()
        owners_hub.stop()
        vets_hub.stop()


async def renegotiate_with_a_live_room(vet: RtcClient, consult: VideoConsult) -> None:
    """The vet offers to the media server anew: a live replica now hosts the room and answers
    (a signal forwarded to a replica that is gone would never be answered)."""
    await vet.peer(consult.id, "sfu", 50).offer()
    answer = await vet.wait_for("signal", lambda e: e["from"] == "sfu", timeout=DEADLINE_S)
    assert answer["description"]["type"] == "answer"
    assert not vet.received["signal_failed"]


async def test_an_sfu_room_pinned_to_a_killed_replica_moves_to_a_live_one(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    async with sfu_call_hosted_by_the_owners_hub(settings, pool, SHORT) as (consult, vet, doomed):
        kill(doomed)
        # Once the dead replica's lease lapses, the vet (connected to the survivor) is told its
        # media server is gone, before any ICE timeout would have told it.
        lost = await vet.wait_for("sfu_lost", timeout=DEADLINE_S)
        assert lost == {"consult_id": consult.id}
        left = await vet.wait_for("peer_left", timeout=DEADLINE_S)
        assert left == {"consult_id": consult.id, "user_id": consult.owner.id}

        await renegotiate_with_a_live_room(vet, consult)


async def test_an_sfu_room_on_a_draining_replica_is_lost_at_once_and_rehosted(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    # A lease far longer than the wait below: only the draining replica itself can tell.
    long_lease = {"RTC_REPLICA_LEASE_S": "120"}
    async with sfu_call_hosted_by_the_owners_hub(settings, pool, long_lease) as hosted:
        consult, vet, draining = hosted
        draining.process.send_signal(signal.SIGTERM)
        lost = await vet.wait_for("sfu_lost", timeout=30)
        assert lost == {"consult_id": consult.id}
        assert await asyncio.to_thread(draining.process.wait, 15) == 0

        await renegotiate_with_a_live_room(vet, consult)
