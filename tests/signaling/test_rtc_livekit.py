"""livekit mode: a consult larger than the embedded SFU takes gets LiveKit tokens in its join
ack (and in `admitted`), after the hub creates the room at a local Twirp endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from livekit import api

from bench.media.consults import make_video_consult
from bench.media.rtc_client import RtcClient
from pawhub.settings import Settings
from signaling.modes import SFU_MAX_PARTICIPANTS
from tests.conftest import start_hub
from tests.integrations.test_livekit import API_KEY, API_SECRET, FakeRoomService
from tests.signaling.rtc_client import join


@pytest.fixture
async def livekit_hub_url(
    settings: Settings, livekit_server: FakeRoomService
) -> AsyncIterator[str]:
    runner, url = await start_hub(
        settings.model_copy(
            update={
                "livekit_url": livekit_server.url,
                "livekit_api_key": API_KEY,
                "livekit_api_secret": API_SECRET,
            }
        )
    )
    yield url
    await runner.cleanup()


def video_grants(token: str, identity: str) -> api.VideoGrants:
    claims = api.TokenVerifier(API_KEY, API_SECRET).verify(token)
    assert claims.identity == identity
    assert claims.video is not None
    return claims.video


async def test_a_large_consult_meets_in_livekit(
    livekit_hub_url: str, livekit_server: FakeRoomService, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret, invited=SFU_MAX_PARTICIPANTS - 1)
    assert len(consult.everyone) > SFU_MAX_PARTICIPANTS
    vet = await RtcClient.connect(livekit_hub_url, consult.vet.token)
    owner = await RtcClient.connect(livekit_hub_url, consult.owner.token)
    try:
        joined = await join(vet, consult)
        assert joined["mode"] == "livekit"
        assert joined["livekit"]["url"] == livekit_server.url
        vet_grants = video_grants(joined["livekit"]["token"], consult.vet.id)
        assert vet_grants.room == f"consult-{consult.id}"
        assert vet_grants.room_join and vet_grants.can_publish and vet_grants.room_admin

        waiting = await join(owner, consult)
        assert waiting["mode"] == "livekit" and waiting["waiting"] is True
        assert "livekit" not in waiting  # no token before the vet admits them

        admit = {"consult_id": consult.id, "user_id": consult.owner.id}
        assert (await vet.call("admit", admit))["ok"]
        admitted = await owner.wait_for("admitted")
        owner_grants = video_grants(admitted["livekit"]["token"], consult.owner.id)
        assert owner_grants.room == f"consult-{consult.id}"
        assert owner_grants.room_join and owner_grants.can_publish
        assert not owner_grants.room_admin

        rooms = {call.request.name for call in livekit_server.calls if call.method == "CreateRoom"}
        assert rooms == {f"consult-{consult.id}"}
    finally:
        await vet.close()
        await owner.close()


async def test_without_livekit_a_large_consult_uses_the_embedded_sfu(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret, invited=SFU_MAX_PARTICIPANTS - 1)
    vet = await RtcClient.connect(hub_url, consult.vet.token)
    try:
        joined = await join(vet, consult)
        assert joined["mode"] == "sfu" and "livekit" not in joined
    finally:
        await vet.close()
