"""A Janus-served consult (a real Janus) across two hub processes, the one hosting the consult's
room SIGKILLed mid-consult: Janus ends that replica's session with its socket but keeps the
room, the survivor's reaper tells the members `sfu_lost`, and the survivor, hosting the consult
now, replaces the dead replica's room (same id; its secret is derived from the consult and the
shared JWT secret) so that both members see each other again: the vet, who stayed, by
publishing anew; the owner, whose socket died with the replica, by reconnecting to the
survivor. A room nobody comes back to is destroyed by the reaper that releases it."""

from __future__ import annotations

import aiohttp
import asyncpg
import pytest

from bench.media.consults import make_video_consult
from bench.media.rtc_client import RtcClient
from bench.media.split_media import SplitMedia
from media.janus import JanusHandle, JanusSession
from pawhub.settings import Settings
from tests.e2e.hubs import start_hub_process
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


async def test_a_janus_room_whose_replica_died_is_replaced_by_a_live_one(
    settings: Settings, pool: asyncpg.Pool, janus: Janus
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    environment = {**SHORT, "JANUS_URL": janus.url}
    doomed, survivor = [await start_hub_process(settings, **environment) for _ in range(2)]
    vet = await RtcClient.connect(survivor.url, consult.vet.token)
    owner = await RtcClient.connect(doomed.url, consult.owner.token)
    owner_again: RtcClient | None = None
    media: list[SplitMedia] = []
    try:
        await join(vet, consult, mode="sfu")
        await enter_call(consult, vet, [(owner, consult.owner)])
        vet_media, owner_media = (
            SplitMedia(vet, consult.id, VET),
            SplitMedia(owner, consult.id, OWNER),
        )
        media += [vet_media, owner_media]
        owner_media.publish()  # the owner's signal reaches the doomed hub first: it hosts
        await eventually(lambda: owner_media.answered == 1, "the owner's publish answered")
        vet_media.publish()
        await eventually(lambda: both_see(vet_media, owner_media), "video both ways")

        kill(doomed)
        await eventually(lambda: vet_media.lost == 1, "the vet told sfu_lost", DEADLINE_S)
        owner_again = await RtcClient.connect(survivor.url, consult.owner.token)
        assert (await join(owner_again, consult))["waiting"] is False
        owner_back = SplitMedia(owner_again, consult.id, OWNER)
        media.append(owner_back)
        owner_back.publish()
        since = (vet_media.frames_from(OWNER), 0)
        await eventually(
            lambda: both_see(vet_media, owner_back, since), "video both ways through the survivor"
        )
        assert vet_media.refusals == [] or {ack["error"]["code"] for ack in vet_media.refusals} == {
            "unavailable"
        }
    finally:
        for member in media:
            await member.close()
        for client in (vet, owner, owner_again):
            if client is not None:
                await client.close()
        doomed.stop()
        survivor.stop()


async def room_exists(control: JanusHandle, consult_id: str) -> bool:
    return bool((await control.request({"request": "exists", "room": consult_id}))["exists"])


async def test_a_janus_room_nobody_comes_back_to_is_destroyed_once_its_replica_is_reaped(
    settings: Settings, pool: asyncpg.Pool, janus: Janus
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    environment = {**SHORT, "JANUS_URL": janus.url}
    doomed, survivor = [await start_hub_process(settings, **environment) for _ in range(2)]
    vet = await RtcClient.connect(survivor.url, consult.vet.token)
    owner = await RtcClient.connect(doomed.url, consult.owner.token)
    owner_media = SplitMedia(owner, consult.id, OWNER)
    try:
        async with aiohttp.ClientSession() as http:
            session = await JanusSession.connect(http, janus.url)
            control = await session.attach()
            await join(vet, consult, mode="sfu")
            await enter_call(consult, vet, [(owner, consult.owner)])
            owner_media.publish()
            await eventually(lambda: owner_media.answered == 1, "the owner's publish answered")
            assert await room_exists(control, consult.id)

            kill(doomed)
            assert await vet.wait_for("sfu_lost", timeout=DEADLINE_S) == {"consult_id": consult.id}

            async def destroyed() -> bool:
                return not await room_exists(control, consult.id)

            await eventually(destroyed, "the dead replica's room destroyed")
            await session.close()
    finally:
        await owner_media.close()
        await vet.close()
        await owner.close()
        doomed.stop()
        survivor.stop()
