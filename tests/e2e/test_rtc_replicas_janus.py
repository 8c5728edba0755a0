"""A Janus-served consult (a real Janus) across two hub processes, the one hosting the consult's
room SIGKILLed mid-consult: Janus ends that replica's session with its socket but keeps the
room, the survivor's reaper tells the members `sfu_lost`, and the survivor, hosting the consult
now, replaces the dead replica's room (same id; its secret is derived from the consult and the
shared JWT secret) so that both members see each other again: the vet, who stayed, by
publishing anew; the owner, whose socket died with the replica, by reconnecting to the
survivor. A room nobody comes back to is destroyed by the reaper that releases it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import NamedTuple

import aiohttp
import asyncpg
import pytest

from bench.media.consults import VideoConsult, make_video_consult
from bench.media.rtc_client import RtcClient
from bench.media.split_media import SplitMedia
from media.janus import JanusHandle, JanusSession
from pawhub.settings import Settings
from tests.e2e.hubs import HubProcess, start_hub_process
from tests.e2e.test_rtc_replicas import DEADLINE_S, SHORT, kill
from tests.janus_process import Janus
from tests.signaling.rtc_client import enter_call, join
from tests.waiting import eventually

pytestmark = pytest.mark.slow

VET, OWNER = 50, 120  # their cameras' lumas
FRAMES = 30


def both_see(vet: SplitMedia, owner: SplitMedia, since: tuple[int, int] = (0, 0)) -> bool:
    return (
        vet.frames_from(OWNER) >= since[0] + FRAMES and owner.frames_from(VET) >= since[1] + FRAMES
    )


class HostedByTheDoomed(NamedTuple):
    consult: VideoConsult
    vet: RtcClient  # on the survivor
    owner: SplitMedia  # on the doomed hub, which hosts the consult's room
    doomed: HubProcess
    survivor: HubProcess


@contextlib.asynccontextmanager
async def hosted_by_the_doomed(
    settings: Settings, pool: asyncpg.Pool, janus: Janus
) -> AsyncIterator[HostedByTheDoomed]:
    """Two hub processes with Janus, the vet on one and the owner on the other, whose publish
    offer (answered) pins the consult's room to its hub. They have a Redis namespace of their
    own: the survivor is the one that reaps the other (every replica of a deployment serves
    sfu mode alike; the test run's other hubs have no Janus)."""
    consult = await make_video_consult(pool, settings.jwt_secret)
    own = settings.model_copy(update={"redis_namespace": f"{settings.redis_namespace}-jr"})
    environment = {**SHORT, "JANUS_URL": janus.url}
    doomed, survivor = [await start_hub_process(own, **environment) for _ in range(2)]
    vet = await RtcClient.connect(survivor.url, consult.vet.token)
    owner = await RtcClient.connect(doomed.url, consult.owner.token)
    owner_media = SplitMedia(owner, consult.id, OWNER)
    try:
        await join(vet, consult, mode="sfu")
        await enter_call(consult, vet, [(owner, consult.owner)])
        owner_media.publish()
        await eventually(lambda: owner_media.answered == 1, "the owner's publish answered")
        yield HostedByTheDoomed(consult, vet, owner_media, doomed, survivor)
    finally:
        await owner_media.close()
        await vet.close()
        await owner.close()
        doomed.stop()
        survivor.stop()


async def test_a_janus_room_whose_replica_died_is_replaced_by_a_live_one(
    settings: Settings, pool: asyncpg.Pool, janus: Janus
) -> None:
    async with hosted_by_the_doomed(settings, pool, janus) as call:
        consult, survivor = call.consult, call.survivor
        vet_media = SplitMedia(call.vet, consult.id, VET)
        owner_again = await RtcClient.connect(survivor.url, consult.owner.token)
        owner_back = SplitMedia(owner_again, consult.id, OWNER)
        try:
            vet_media.publish()
            await eventually(lambda: both_see(vet_media, call.owner), "video both ways")

            kill(call.doomed)
            await eventually(lambda: vet_media.lost == 1, "the vet told sfu_lost", DEADLINE_S)
            assert (await join(owner_again, consult))["waiting"] is False
            owner_back.publish()
            since = (vet_media.frames_from(OWNER), 0)
            await eventually(
                lambda: both_see(vet_media, owner_back, since),
                "video both ways through the survivor",
            )
            refused = {ack["error"]["code"] for ack in vet_media.refusals}
            assert refused <= {"unavailable"}, vet_media.refusals
        finally:
            await vet_media.close()
            await owner_back.close()
            await owner_again.close()


async def room_exists(control: JanusHandle, consult_id: str) -> bool:
    return bool((await control.request({"request": "exists", "room": consult_id}))["exists"])


async def test_a_janus_room_nobody_comes_back_to_is_destroyed_once_its_replica_is_reaped(
    settings: Settings, pool: asyncpg.Pool, janus: Janus
) -> None:
    async with hosted_by_the_doomed(settings, pool, janus) as call, aiohttp.ClientSession() as http:
        session = await JanusSession.connect(http, janus.url)
        control = await session.attach()
        assert await room_exists(control, call.consult.id)

        kill(call.doomed)
        lost = await call.vet.wait_for("sfu_lost", timeout=DEADLINE_S)
        assert lost == {"consult_id": call.consult.id}

        async def destroyed() -> bool:
            return not await room_exists(control, call.consult.id)

        await eventually(destroyed, "the dead replica's room destroyed")
        await session.close()
