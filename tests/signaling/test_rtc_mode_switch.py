"""When a call moves to sfu: a recording starting in a p2p call (only once it really starts,
told once to everyone in it as `mode {consult_id, mode: "sfu"}`, before `recording`, never moved
back; an sfu call is told nothing, a LiveKit call still cannot be recorded), and a p2p call
that a third person joins."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from bench.media.consults import make_person, make_video_consult
from bench.media.rtc_client import RtcClient
from domain.identity import Role
from domain.scheduling.consults import invite
from pawhub.settings import Settings
from signaling.modes import SFU_MAX_PARTICIPANTS
from tests.signaling.rtc_client import connected, enter_call, error_code, join
from tests.signaling.test_rtc_livekit import livekit_hub_url  # noqa: F401 (a hub with LiveKit)
from tests.signaling.test_rtc_recording import consent, record, states_seen


async def test_recording_moves_a_p2p_call_to_sfu_once_and_for_good(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with connected(hub_url, consult.vet, consult.owner) as (vet, owner):
        await enter_call(consult, vet, [(owner, consult.owner)])
        assert owner.received["admitted"][0]["mode"] == "p2p"

        assert error_code(await record(vet, consult.id, "start")) == "consent_required"
        assert (await join(vet, consult))["mode"] == "p2p", "a refused start moved the call"
        await consent(vet, consult.id, granted=True)
        await consent(owner, consult.id, granted=True)
        started = await record(vet, consult.id, "start")
        assert started == {"ok": True, "recording_id": started["recording_id"]}
        moved = {"consult_id": consult.id, "mode": "sfu"}
        for client in (vet, owner):
            assert await client.wait_for("mode") == moved
            assert await states_seen(client, 1) == ["recording"]
        assert (await record(vet, consult.id, "start")) == started
        assert (await record(vet, consult.id, "stop"))["ok"]
        assert await states_seen(owner, 2) == ["recording", "stopped"]
        for client in (vet, owner):  # told once, and not moved back by the stop
            assert client.received["mode"] == [moved]

        # A rejoin on a new connection finds the call in sfu, polite toward the room.
        async with connected(hub_url, consult.owner) as (returning,):
            rejoined = await join(returning, consult)
            assert rejoined["mode"] == "sfu" and rejoined["polite"] is True
            assert rejoined["waiting"] is False
        assert (await join(vet, consult))["mode"] == "sfu"


async def test_an_sfu_call_is_recorded_without_a_mode_change(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with connected(hub_url, consult.vet, consult.owner) as (vet, owner):
        assert (await join(vet, consult, mode="sfu"))["mode"] == "sfu"
        await enter_call(consult, vet, [(owner, consult.owner)])
        for client in (vet, owner):
            await consent(client, consult.id, granted=True)
        assert (await record(vet, consult.id, "start"))["ok"]
        assert await states_seen(owner, 1) == ["recording"]
        assert (await record(vet, consult.id, "stop"))["ok"]
        assert await states_seen(owner, 2) == ["recording", "stopped"]
        assert vet.received["mode"] == [] and owner.received["mode"] == []


async def test_a_livekit_call_refuses_recording_on_a_hub_without_s3(
    livekit_hub_url: str,  # noqa: F811
    pool: asyncpg.Pool,
    settings: Settings,
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret, invited=SFU_MAX_PARTICIPANTS - 1)
    vet = await RtcClient.connect(livekit_hub_url, consult.vet.token)
    try:
        assert (await join(vet, consult))["mode"] == "livekit"
        await consent(vet, consult.id, granted=True)
        refused = await record(vet, consult.id, "start")
        assert error_code(refused) == "unavailable"
        assert (await join(vet, consult))["mode"] == "livekit"
        assert vet.received["mode"] == [] and vet.received["recording"] == []
    finally:
        await vet.close()


async def test_a_p2p_call_that_grows_to_three_moves_to_sfu(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    guest = await make_person(pool, settings.jwt_secret, Role.owner, "Gus Guest")
    async with connected(hub_url, consult.vet, consult.owner, guest) as (vet, owner, latecomer):
        await enter_call(consult, vet, [(owner, consult.owner)])
        assert owner.received["admitted"][0]["mode"] == "p2p"
        async with pool.acquire() as conn:  # the owner invites someone once the call is on
            await invite(conn, consult.owner.user.id, UUID(consult.id), guest.user.id)

        await enter_call(consult, vet, [(latecomer, guest)])
        welcome = latecomer.received["admitted"][0]
        assert (welcome["mode"], welcome["polite"]) == ("sfu", True)
        moved = {"consult_id": consult.id, "mode": "sfu"}
        for client in (vet, owner):
            assert await client.wait_for("mode") == moved
        assert latecomer.received["mode"] == []  # its welcome said so already
        assert (await join(vet, consult))["mode"] == "sfu"
