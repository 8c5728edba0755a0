"""Real aiortc peers with synthetic cameras meet through the hub's `/rtc` namespace on loopback."""

from __future__ import annotations

import asyncpg
import pytest

from bench.media.consults import make_video_consult
from bench.media.rtc_client import RtcClient
from pawhub.settings import Settings
from tests.signaling.rtc_client import enter_call, error_code, join, use_loopback_ice
from tests.waiting import eventually

LUMAS = {"vet": 50, "owner": 120, "guest": 190}
FRAMES = 30


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    use_loopback_ice(monkeypatch)


async def test_owner_waits_is_admitted_and_both_see_each_other(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    owner = await RtcClient.connect(hub_url, consult.owner.token)
    vet = await RtcClient.connect(hub_url, consult.vet.token)
    try:
        waiting = await join(owner, consult)
        assert waiting["waiting"] is True and waiting["peers"] == []
        assert waiting["mode"] == "p2p" and waiting["polite"] is True
        assert waiting["you"] == {"user_id": consult.owner.id, "role": "owner"}
        assert "livekit" not in waiting

        joined = await join(vet, consult)
        assert joined["waiting"] is False and joined["polite"] is False
        assert joined["peers"] == []
        lobby_entry = {"consult_id": consult.id, "user_id": consult.owner.id, "name": "Olive Owner"}
        assert joined["lobby"] == [lobby_entry]
        assert await vet.wait_for("lobby") == lobby_entry

        owner_peer = owner.peer(consult.id, consult.vet.id, LUMAS["owner"])
        vet_peer = vet.peer(consult.id, consult.owner.id, LUMAS["vet"])
        await vet_peer.pc.setLocalDescription(await vet_peer.pc.createOffer())
        early = {"type": "offer", "sdp": vet_peer.pc.localDescription.sdp}
        refused = await owner.call(
            "signal", {"consult_id": consult.id, "to": consult.vet.id, "description": early}
        )
        assert error_code(refused) == "forbidden"  # still in the lobby

        assert (await vet.call("admit", {"consult_id": consult.id, "user_id": consult.owner.id}))[
            "ok"
        ]
        admitted = await owner.wait_for("admitted")
        assert admitted["peers"] == [{"user_id": consult.vet.id, "role": "vet"}]
        assert admitted["polite"] is True and admitted["mode"] == "p2p"
        peer_joined = await vet.wait_for("peer_joined")
        assert peer_joined == {
            "consult_id": consult.id,
            "user_id": consult.owner.id,
            "role": "owner",
        }

        await vet_peer.offer()  # the impolite side offers

        def both_see_each_other() -> bool:
            return (
                vet_peer.senders(LUMAS)["owner"] >= FRAMES
                and owner_peer.senders(LUMAS)["vet"] >= FRAMES
            )

        await eventually(both_see_each_other, f"{FRAMES} frames each way")
        assert vet_peer.pc.iceConnectionState in ("connected", "completed")
        assert owner_peer.pc.iceConnectionState in ("connected", "completed")
        assert vet_peer.senders(LUMAS)["vet"] == 0 and owner_peer.senders(LUMAS)["owner"] == 0
        assert [s["from"] for s in owner.received["signal"]] == [consult.vet.id]
        assert [s["description"]["type"] for s in vet.received["signal"]] == ["answer"]
    finally:
        await owner.close()
        await vet.close()


async def test_three_in_sfu_mode_each_receive_the_other_two(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret, invited=1)
    people = {"vet": consult.vet, "owner": consult.owner, "guest": consult.invited[0]}
    clients = {name: await RtcClient.connect(hub_url, p.token) for name, p in people.items()}
    try:
        await enter_call(
            consult,
            clients["vet"],
            [(clients["owner"], consult.owner), (clients["guest"], consult.invited[0])],
        )
        assert clients["guest"].received["admitted"][0]["mode"] == "sfu"
        assert clients["guest"].received["admitted"][0]["polite"] is True
        peers = {
            name: client.peer(consult.id, "sfu", LUMAS[name]) for name, client in clients.items()
        }
        for peer in peers.values():
            await peer.offer()

        def everyone_sees_the_others() -> bool:
            return all(
                peers[name].senders(LUMAS)[other] >= FRAMES
                for name in peers
                for other in peers
                if other != name
            )

        await eventually(everyone_sees_the_others, f"{FRAMES} frames from each other")
        for name, client in clients.items():
            assert peers[name].senders(LUMAS)[name] == 0, "the room echoed a sender's video"
            assert {s["from"] for s in client.received["signal"]} == {"sfu"}
            assert not client.received["signal_failed"]
    finally:
        for client in clients.values():
            await client.close()
