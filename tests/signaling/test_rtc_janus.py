"""`sfu` consults served by a real Janus (deploy/janus) through the hub's `/rtc`: the hub
creates the consult's VideoRoom, relays each member's two connections (`pc`), renegotiates the
subscriptions as feeds come and go, and when Janus dies tells everyone `sfu_lost`; they
publish anew once it is back. Real aiortc members (bench.media.split_media) on the
host's own addresses (Janus offers no 127.0.0.1 candidate)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import asyncpg
import pytest
from aiortc import AudioStreamTrack, RTCPeerConnection

from bench.media.consults import VideoConsult, make_video_consult
from bench.media.split_media import SplitMedia
from media.janus import JanusError, JanusSession
from media.janus_room import JanusRoom
from media.sfu import MAX_EARLY_CANDIDATES
from pawhub.settings import Settings
from signaling.sfu_host import MAX_PUBLISHED_TRACKS
from tests.conftest import start_hub
from tests.janus_process import Janus
from tests.signaling.rtc_client import MINIMAL_SDP, connected, enter_call, error_code, join
from tests.waiting import eventually

LUMAS = (50, 120, 190)  # vet, owner, guest
FRAMES = 30


@pytest.fixture
async def janus_hub(settings: Settings, janus: Janus) -> AsyncIterator[str]:
    runner, url = await start_hub(settings.model_copy(update={"janus_url": janus.url}))
    yield url
    await runner.cleanup()


def sees(viewer: SplitMedia, lumas: list[int], frames: int) -> bool:
    return all(viewer.frames_from(luma) >= frames for luma in lumas)


async def test_three_members_through_janus_each_decode_the_other_two(
    janus_hub: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret, invited=1)
    async with connected(janus_hub, *consult.everyone) as clients:
        vet, owner, guest = clients
        joined = await join(vet, consult)
        assert joined["mode"] == "sfu" and joined["sfu_connections"] == 2
        await enter_call(consult, vet, [(owner, consult.owner), (guest, consult.invited[0])])

        one_connection = {"type": "offer", "sdp": MINIMAL_SDP}
        refused = await vet.call(
            "signal", {"consult_id": consult.id, "to": "sfu", "description": one_connection}
        )
        assert error_code(refused) == "invalid"  # Janus needs the two connections

        media = [
            SplitMedia(client, consult.id, luma)
            for client, luma in zip(clients, LUMAS, strict=True)
        ]
        try:
            for member in media:
                member.publish()

            def everyone_sees_the_others() -> bool:
                return all(
                    sees(member, [luma for luma in LUMAS if luma != member.luma], FRAMES)
                    for member in media
                )

            await eventually(everyone_sees_the_others, f"{FRAMES} frames from each other member")
            assert all(member.frames_from(member.luma) == 0 for member in media)  # no echo
            assert all(member.refusals == [] for member in media)
            # The last to publish was offered both others at once or in turn; the first had
            # its subscription renegotiated as each of the others came.
            assert all(member.subscribe_offers for member in media)
            streams = {
                line for line in media[1].subscribe_offers[-1].splitlines() if "msid:" in line
            }
            named = {line.split(":")[1].split()[0] for line in streams}
            assert named == {consult.vet.id, consult.invited[0].id}  # as the page tells tiles

            owner_media = media[1]
            offers, before = len(owner_media.subscribe_offers), owner_media.frames_from(LUMAS[0])
            await guest.call("leave", {"consult_id": consult.id})
            await eventually(
                lambda: len(owner_media.subscribe_offers) > offers, "Janus drops the guest's stream"
            )
            await eventually(
                lambda: owner_media.frames_from(LUMAS[0]) >= before + FRAMES,
                "the vet's video goes on after the guest left",
            )

            # The vet's page reopens its connections: a new subscription carries the owner's
            # video to it. (That the owner's subscription follows the vet's new feed is the
            # browser's part: aiortc does not follow a renegotiated m-line's new SSRC.)
            vet_media = media[0]
            vet_offers, before = len(vet_media.subscribe_offers), vet_media.frames_from(LUMAS[1])
            vet_media.publish()
            await eventually(
                lambda: vet_media.frames_from(LUMAS[1]) >= before + FRAMES,
                "the owner's video on the vet's new subscribe connection",
            )
            assert len(vet_media.subscribe_offers) > vet_offers and vet_media.refusals == []
        finally:
            for member in media:
                await member.close()


async def test_a_killed_janus_is_told_and_the_consult_renegotiates_when_it_returns(
    janus_hub: str, janus: Janus, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with connected(janus_hub, consult.vet, consult.owner) as (vet, owner):
        await join(vet, consult, mode="sfu")
        await enter_call(consult, vet, [(owner, consult.owner)])
        vet_media = SplitMedia(vet, consult.id, LUMAS[0])
        owner_media = SplitMedia(owner, consult.id, LUMAS[1])
        try:
            vet_media.publish()
            owner_media.publish()
            await eventually(
                lambda: (
                    sees(vet_media, [LUMAS[1]], FRAMES) and sees(owner_media, [LUMAS[0]], FRAMES)
                ),
                "video both ways through Janus",
            )

            await janus.kill()
            await eventually(
                lambda: vet_media.lost == 1 and owner_media.lost == 1, "both told sfu_lost"
            )
            await eventually(
                lambda: bool(vet_media.refusals and owner_media.refusals),
                "offers refused while Janus is down",
            )
            assert {ack["error"]["code"] for ack in vet_media.refusals} == {"unavailable"}

            await janus.start()
            before = (vet_media.frames_from(LUMAS[1]), owner_media.frames_from(LUMAS[0]))
            await eventually(
                lambda: (
                    vet_media.frames_from(LUMAS[1]) >= before[0] + FRAMES
                    and owner_media.frames_from(LUMAS[0]) >= before[1] + FRAMES
                ),
                "video both ways through the restarted Janus",
            )
        finally:
            await vet_media.close()
            await owner_media.close()


async def test_the_embedded_sfu_takes_one_connection_per_member(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult: VideoConsult = await make_video_consult(pool, settings.jwt_secret)
    async with connected(hub_url, consult.vet, consult.owner) as (vet, owner):
        joined = await join(vet, consult, mode="sfu")
        assert joined["sfu_connections"] == 1
        await enter_call(consult, vet, [(owner, consult.owner)])
        description = {"type": "offer", "sdp": MINIMAL_SDP}
        split = {"consult_id": consult.id, "to": "sfu", "pc": "publish", "description": description}
        assert error_code(await vet.call("signal", split)) == "invalid"
        to_peer = {**split, "to": consult.owner.id}
        assert error_code(await vet.call("signal", to_peer)) == "invalid"  # `pc` is for "sfu"
        assert vet.sio.connected and owner.received["signal"] == []


async def test_without_s3_a_janus_served_consult_is_not_recorded_and_says_so(
    janus_hub: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with connected(janus_hub, consult.vet, consult.owner) as (vet, owner):
        await join(vet, consult, mode="sfu")
        await enter_call(consult, vet, [(owner, consult.owner)])
        for client in (vet, owner):
            granted = await client.call("consent", {"consult_id": consult.id, "granted": True})
            assert granted["ok"], granted
        started = await vet.call("record", {"consult_id": consult.id, "action": "start"})
        assert error_code(started) == "unavailable"  # never a "Recording" that keeps nothing
        assert "S3" in started["error"]["message"]
        assert "Janus" in started["error"]["message"]
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM recordings WHERE consult_id = $1", UUID(consult.id)
            )
            == 0
        )
        assert owner.received["recording"] == [] and vet.sio.connected


async def test_what_a_member_sends_janus_is_bounded(
    janus_hub: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    pc = RTCPeerConnection()
    async with connected(janus_hub, consult.vet) as (vet,):
        try:
            await join(vet, consult, mode="sfu")

            async def publish() -> dict[str, Any]:
                await pc.setLocalDescription(await pc.createOffer())
                description = {"type": "offer", "sdp": pc.localDescription.sdp}
                signal = {"consult_id": consult.id, "to": "sfu", "pc": "publish", "session": "a"}
                return await vet.call("signal", {**signal, "description": description})

            for _ in range(MAX_PUBLISHED_TRACKS + 1):
                pc.addTrack(AudioStreamTrack())
            assert error_code(await publish()) == "too_large"
            assert vet.sio.connected

            await pc.close()
            pc = RTCPeerConnection()
            pc.addTrack(AudioStreamTrack())
            assert (await publish())["ok"]

            def candidate(number: int) -> dict[str, object]:
                line = f"candidate:{number} 1 udp 2130706431 127.0.0.1 {20000 + number} typ host"
                init = {"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0}
                return {"consult_id": consult.id, "to": "sfu", "pc": "publish", "candidate": init}

            for number in range(MAX_EARLY_CANDIDATES):
                ack = await vet.call("signal", candidate(number))
                assert ack["ok"], (number, ack)
            assert error_code(await vet.call("signal", candidate(MAX_EARLY_CANDIDATES))) == (
                "too_large"
            )
            assert vet.sio.connected
        finally:
            await pc.close()


async def test_a_publish_janus_refused_leaves_the_member_free_to_connect_anew(
    janus_hub: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with connected(janus_hub, consult.vet, consult.owner) as (vet, owner):
        await join(vet, consult, mode="sfu")
        await enter_call(consult, vet, [(owner, consult.owner)])
        unusable = {"type": "offer", "sdp": MINIMAL_SDP}  # parses, but no ICE nor DTLS
        signal = {"consult_id": consult.id, "to": "sfu", "pc": "publish", "session": "first"}
        refused = await vet.call("signal", {**signal, "description": unusable})
        assert refused["ok"] is False, refused
        stale = {**signal, "pc": "subscribe", "description": {"type": "answer", "sdp": MINIMAL_SDP}}
        assert error_code(await vet.call("signal", stale)) == "conflict"  # no such connection

        media = [SplitMedia(vet, consult.id, LUMAS[0]), SplitMedia(owner, consult.id, LUMAS[1])]
        try:
            for member in media:
                member.publish()
            await eventually(
                lambda: sees(media[0], [LUMAS[1]], FRAMES) and sees(media[1], [LUMAS[0]], FRAMES),
                "video both ways after the refused publish",
            )
        finally:
            for member in media:
                await member.close()


async def test_a_janus_with_an_api_secret_and_admin_key_serves_a_hub_that_has_them(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    guarded = Janus(tmp_path / "guarded", api_secret="api-secret-1", admin_key="admin-key-1")
    await guarded.start()
    try:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(JanusError, match="Unauthorized"):
                await JanusSession.connect(http, guarded.url)  # no api_secret
            session = await JanusSession.connect(http, guarded.url, "api-secret-1")
            with pytest.raises(JanusError, match="admin_key"):
                await JanusRoom(await session.attach(), "no-admin-key").create([], 1)
            await session.close()

        access = {
            "janus_url": guarded.url,
            "janus_api_secret": "api-secret-1",
            "janus_admin_key": "admin-key-1",
        }
        runner, url = await start_hub(settings.model_copy(update=access))
        consult = await make_video_consult(pool, settings.jwt_secret)
        try:
            async with connected(url, consult.vet, consult.owner) as (vet, owner):
                await join(vet, consult, mode="sfu")
                await enter_call(consult, vet, [(owner, consult.owner)])
                media = [
                    SplitMedia(vet, consult.id, LUMAS[0]),
                    SplitMedia(owner, consult.id, LUMAS[1]),
                ]
                try:
                    for member in media:
                        member.publish()
                    await eventually(
                        lambda: (
                            sees(media[0], [LUMAS[1]], FRAMES)
                            and sees(media[1], [LUMAS[0]], FRAMES)
                        ),
                        "video both ways through the guarded Janus",
                    )
                finally:
                    for member in media:
                        await member.close()
        finally:
            await runner.cleanup()
    finally:
        await guarded.kill()
