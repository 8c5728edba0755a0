"""What a consult's participants can make the hub hold in `/rtc` is bounded: invitees in a call,
tracks published to the hub's SFU, candidates buffered before an offer; and only the vet
chooses the SFU."""

from __future__ import annotations

import asyncpg
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

from bench.media.consults import make_video_consult
from bench.media.rtc_client import Ack, RtcClient
from media.sfu import MAX_EARLY_CANDIDATES
from pawhub.settings import Settings
from signaling.lobby import MAX_INVITEES_IN_CALL
from signaling.sfu_host import MAX_PUBLISHED_TRACKS
from tests.signaling.rtc_client import error_code, join, use_loopback_ice


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    use_loopback_ice(monkeypatch)


async def test_only_the_vet_asks_for_the_sfu(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    by_owner = await make_video_consult(pool, settings.jwt_secret)
    by_vet = await make_video_consult(pool, settings.jwt_secret)
    owner = await RtcClient.connect(hub_url, by_owner.owner.token)
    vet = await RtcClient.connect(hub_url, by_vet.vet.token)
    try:
        assert (await join(owner, by_owner, mode="sfu"))["mode"] == "p2p"
        assert (await join(vet, by_vet, mode="sfu"))["mode"] == "sfu"
    finally:
        await owner.close()
        await vet.close()


async def test_a_call_takes_a_bounded_number_of_invitees(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret, invited=MAX_INVITEES_IN_CALL + 1)
    clients = [await RtcClient.connect(hub_url, person.token) for person in consult.invited]
    *admitted, extra = clients
    try:
        for client in admitted:
            assert (await join(client, consult))["waiting"] is True
        refused = await extra.call("join", {"consult_id": consult.id})
        assert error_code(refused) == "conflict"
        assert (await join(admitted[0], consult))["waiting"] is True  # a rejoin still works
        assert (await admitted[0].call("leave", {"consult_id": consult.id}))["ok"]
        assert (await join(extra, consult))["waiting"] is True
        assert all(client.sio.connected for client in clients)
    finally:
        for client in clients:
            await client.close()


async def offer_to_sfu(vet: RtcClient, consult_id: str, pc: RTCPeerConnection) -> Ack:
    await pc.setLocalDescription(await pc.createOffer())
    description = {"type": "offer", "sdp": pc.localDescription.sdp}
    signal = {"consult_id": consult_id, "to": "sfu", "description": description}
    return await vet.call("signal", signal)


async def test_a_member_publishes_a_bounded_number_of_tracks(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    vet = await RtcClient.connect(hub_url, consult.vet.token)
    pc = RTCPeerConnection()
    try:
        await join(vet, consult, mode="sfu")
        for _ in range(MAX_PUBLISHED_TRACKS):
            pc.addTrack(AudioStreamTrack())
        assert (await offer_to_sfu(vet, consult.id, pc))["ok"]
        answer = await vet.wait_for("signal")
        await pc.setRemoteDescription(
            RTCSessionDescription(answer["description"]["sdp"], answer["description"]["type"])
        )
        pc.addTrack(AudioStreamTrack())  # one more, in a renegotiation
        refused = await offer_to_sfu(vet, consult.id, pc)
        assert error_code(refused) == "too_large"
        assert vet.sio.connected and not vet.received["signal_failed"]
    finally:
        await pc.close()
        await vet.close()


async def test_candidates_before_an_offer_are_bounded(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    """A trickle burst is taken (and within the default `signal` budget), up to the bound."""
    consult = await make_video_consult(pool, settings.jwt_secret)
    vet = await RtcClient.connect(hub_url, consult.vet.token)
    try:
        await join(vet, consult, mode="sfu")

        def candidate(number: int) -> dict[str, object]:
            line = f"candidate:{number} 1 udp 2130706431 127.0.0.1 {20000 + number} typ host"
            init = {"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0}
            return {"consult_id": consult.id, "to": "sfu", "candidate": init}

        for number in range(MAX_EARLY_CANDIDATES):
            ack = await vet.call("signal", candidate(number))
            assert ack["ok"], (number, ack)
        refused = await vet.call("signal", candidate(MAX_EARLY_CANDIDATES))
        assert error_code(refused) == "too_large"
        assert vet.sio.connected
    finally:
        await vet.close()
