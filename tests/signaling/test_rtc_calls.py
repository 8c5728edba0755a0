"""A call's life: leaving, dropping and coming back within the grace, and members on different
hub replicas (a second hub in this process, sharing PostgreSQL and Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from bench.media.consults import VideoConsult, make_video_consult
from bench.media.rtc_client import RtcClient
from pawhub.settings import Settings
from tests.conftest import start_hub
from tests.signaling.rtc_client import enter_call, join, sfu_peers, use_loopback_ice
from tests.waiting import eventually

LUMAS = {"vet": 50, "owner": 120}
AcrossReplicas = tuple[VideoConsult, RtcClient, RtcClient]
FRAMES = 30


@pytest.fixture
async def second_hub_url(settings: Settings) -> AsyncIterator[str]:
    runner, url = await start_hub(settings)
    yield url
    await runner.cleanup()


async def test_leave_tells_the_others_at_once_and_a_rejoin_waits_again(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    vet = await RtcClient.connect(hub_url, consult.vet.token)
    owner = await RtcClient.connect(hub_url, consult.owner.token)
    try:
        await enter_call(consult, vet, [(owner, consult.owner)])
        assert (await join(vet, consult))["peers"] == [
            {"user_id": consult.owner.id, "role": "owner"}
        ]
        candidate = {
            "consult_id": consult.id,
            "to": consult.owner.id,
            "candidate": {"candidate": ""},
        }
        assert (await vet.call("signal", candidate))["ok"]
        await owner.wait_for("signal")  # after anything the repeated join would have sent
        assert not owner.received["peer_joined"], "a repeated join was announced"

        # The names the clients give their connections travel with a signal, as they came.
        named = {**candidate, "session": "vet-pc-2", "to_session": "owner_pc_1"}
        assert (await vet.call("signal", named))["ok"]
        relayed = await owner.wait_for("signal", lambda e: "session" in e)
        assert (relayed["session"], relayed["to_session"]) == ("vet-pc-2", "owner_pc_1")
        refused = await vet.call("signal", {**candidate, "session": "x" * 65})
        assert refused["ok"] is False and refused["error"]["code"] == "invalid"

        assert (await owner.call("leave", {"consult_id": consult.id}))["ok"]
        left = await vet.wait_for("peer_left")
        assert left == {"consult_id": consult.id, "user_id": consult.owner.id}
        assert (await owner.call("leave", {"consult_id": consult.id}))["ok"]  # idempotent
        again = await join(owner, consult)
        assert again["waiting"] is True and again["peers"] == []
        assert len(vet.received["peer_left"]) == 1
    finally:
        await vet.close()
        await owner.close()


async def test_a_peer_back_within_the_grace_keeps_its_place(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    # A Redis namespace of its own: replicas reap with their own grace, and the others' is 30 s.
    short = {"rtc_reconnect_grace_s": 2.0, "redis_namespace": f"{settings.redis_namespace}-grace"}
    runner, hub_url = await start_hub(settings.model_copy(update=short))
    consult = await make_video_consult(pool, settings.jwt_secret, invited=2)
    guest, waiting_guest = consult.invited
    vet = await RtcClient.connect(hub_url, consult.vet.token)
    owner = await RtcClient.connect(hub_url, consult.owner.token)
    dropping = await RtcClient.connect(hub_url, guest.token)
    lobby_dropping = await RtcClient.connect(hub_url, waiting_guest.token)
    owner_again: RtcClient | None = None
    try:
        await enter_call(consult, vet, [(owner, consult.owner), (dropping, guest)])
        assert (await join(lobby_dropping, consult))["waiting"] is True

        await owner.close()  # the owner's network drops ...
        await dropping.close()  # ... and so does the guest's, for good
        await lobby_dropping.close()
        owner_again = await RtcClient.connect(hub_url, consult.owner.token)
        back = await join(owner_again, consult)  # ... and the owner comes back at once
        assert back["waiting"] is False
        # the guest is in their grace too, so still has a place
        assert {peer["user_id"] for peer in back["peers"]} == {consult.vet.id, guest.id}
        rejoined = await vet.wait_for("peer_joined", lambda e: e.get("rejoined") is True)
        assert rejoined["user_id"] == consult.owner.id

        # The guest's grace runs out (it began after the owner's): only the guest has left.
        left = await vet.wait_for("peer_left", lambda e: e["user_id"] == guest.id)
        assert left == {"consult_id": consult.id, "user_id": guest.id}
        await owner_again.wait_for("peer_left", lambda e: e["user_id"] == guest.id)
        lobby_left = await vet.wait_for("lobby_left")
        assert lobby_left == {"consult_id": consult.id, "user_id": waiting_guest.id}
        assert [e["user_id"] for e in vet.received["peer_left"]] == [guest.id]
        assert not owner_again.received["peer_left"][1:]

        # The owner is still in: signals reach them on their new connection.
        candidate = {"candidate": "", "sdpMid": "0"}  # end of candidates
        signal = {"consult_id": consult.id, "to": consult.owner.id, "candidate": candidate}
        assert (await vet.call("signal", signal))["ok"]
        assert (await owner_again.wait_for("signal"))["candidate"] == candidate
    finally:
        for client in (vet, owner, dropping, lobby_dropping, owner_again):
            if client is not None:
                await client.close()
        await runner.cleanup()


@pytest.fixture
async def across_replicas(
    hub_url: str,
    second_hub_url: str,
    pool: asyncpg.Pool,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[AcrossReplicas]:
    """A video consult, its vet connected to one replica and its owner to the other."""
    use_loopback_ice(monkeypatch)
    consult = await make_video_consult(pool, settings.jwt_secret)
    vet = await RtcClient.connect(hub_url, consult.vet.token)
    owner = await RtcClient.connect(second_hub_url, consult.owner.token)
    yield consult, vet, owner
    await vet.close()
    await owner.close()


async def test_members_on_two_replicas_meet_and_see_each_other(
    across_replicas: AcrossReplicas,
) -> None:
    consult, vet, owner = across_replicas
    await enter_call(consult, vet, [(owner, consult.owner)])  # lobby, admitted: via Redis
    vet_peer = vet.peer(consult.id, consult.owner.id, LUMAS["vet"])
    owner_peer = owner.peer(consult.id, consult.vet.id, LUMAS["owner"])
    await vet_peer.offer()
    await eventually(
        lambda: (
            vet_peer.senders(LUMAS)["owner"] >= FRAMES
            and owner_peer.senders(LUMAS)["vet"] >= FRAMES
        ),
        f"{FRAMES} frames each way across replicas",
    )

    stats = {"consult_id": consult.id, "rtt_ms": 300, "packet_loss": 0.0, "jitter_ms": 10}
    assert (await vet.call("stats", stats)) == {"ok": True, "level": 3}
    quality = await owner.wait_for("quality")
    assert quality == {"consult_id": consult.id, "user_id": consult.vet.id, "level": 3}
    assert not vet.received["quality"]

    assert (await owner.call("leave", {"consult_id": consult.id}))["ok"]
    assert (await vet.wait_for("peer_left"))["user_id"] == consult.owner.id


async def test_an_sfu_call_spans_replicas(across_replicas: AcrossReplicas) -> None:
    """Two people who ask for sfu mode, on different replicas: one replica hosts the room and
    the other forwards its member's signals there."""
    consult, vet, owner = across_replicas
    ack = await join(vet, consult, mode="sfu")
    assert ack["mode"] == "sfu" and ack["polite"] is True
    await enter_call(consult, vet, [(owner, consult.owner)])
    peers = await sfu_peers(consult, vet, owner, LUMAS)
    await eventually(
        lambda: (
            peers["vet"].senders(LUMAS)["owner"] >= FRAMES
            and peers["owner"].senders(LUMAS)["vet"] >= FRAMES
        ),
        f"{FRAMES} frames each way through the room",
    )
    assert not vet.received["signal_failed"] and not owner.received["signal_failed"]
