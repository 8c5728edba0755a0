"""Who may join and signal a consult's call, and how bad signals are refused: each refusal is
an error ack, the connection stays up, and nothing reaches the others."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest
import socketio

from bench.media.consults import make_person, make_video_consult
from bench.media.rtc_client import RtcClient
from domain.identity import Role
from pawhub.settings import Settings
from signaling.sdp import MAX_SDP_BYTES
from tests.signaling.rtc_client import MINIMAL_SDP, enter_call, error_code, join

OFFER = {"type": "offer", "sdp": MINIMAL_SDP}
HUGE_SDP = MINIMAL_SDP + "a=pad\r\n" * (MAX_SDP_BYTES // len("a=pad\r\n"))


async def test_outsiders_cannot_join_or_signal(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    other_consult = await make_video_consult(pool, settings.jwt_secret)
    stranger = await make_person(pool, settings.jwt_secret, Role.owner, "Sam Stranger")
    outsiders = {
        "stranger": stranger,
        "owner of another pet": other_consult.owner,
        "vet of another consult": other_consult.vet,
    }
    vet = await RtcClient.connect(hub_url, consult.vet.token)
    clients = {name: await RtcClient.connect(hub_url, p.token) for name, p in outsiders.items()}
    try:
        await join(vet, consult)
        for name, client in clients.items():
            if name != "stranger":  # in their own consult's call, which opens no other
                await join(client, other_consult)
            refused = await client.call("join", {"consult_id": consult.id})
            assert error_code(refused) == "forbidden", name
            signal = {"consult_id": consult.id, "to": consult.vet.id, "description": OFFER}
            assert error_code(await client.call("signal", signal)) == "forbidden", name
            stats = {"consult_id": consult.id, "rtt_ms": 1, "packet_loss": 0, "jitter_ms": 1}
            assert error_code(await client.call("stats", stats)) == "forbidden", name
            unknown = await client.call("join", {"consult_id": str(uuid4())})
            assert error_code(unknown) == "not_found", name
            signal["consult_id"] = str(uuid4())
            assert error_code(await client.call("signal", signal)) == "not_found", name
            assert client.sio.connected, name
        assert not vet.received["signal"] and not vet.received["lobby"]
        assert not vet.received["peer_joined"]
    finally:
        await vet.close()
        for client in clients.values():
            await client.close()


async def test_a_forged_token_is_refused_at_connect(hub_url: str) -> None:
    client = socketio.AsyncClient(reconnection=False)
    errors: list[object] = []
    client.on("connect_error", errors.append, namespace="/rtc")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            hub_url, auth={"token": "forged"}, namespaces=["/rtc"], transports=["websocket"]
        )
    assert errors == [{"message": "unauthorized"}]


async def test_bad_signals_are_refused_and_the_connection_stays_up(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret, invited=1)
    vet = await RtcClient.connect(hub_url, consult.vet.token)
    owner = await RtcClient.connect(hub_url, consult.owner.token)
    guest = await RtcClient.connect(hub_url, consult.invited[0].token)
    try:
        await enter_call(consult, vet, [(owner, consult.owner)])
        base = {"consult_id": consult.id, "to": consult.owner.id}
        refusals = {
            "invalid": [
                {"consult_id": "not-a-uuid", "to": consult.owner.id, "description": OFFER},
                {**base},  # neither description nor candidate
                {**base, "description": {"type": "offer", "sdp": "hello"}},
                {**base, "description": {"type": "offer", "sdp": "v=0\r\ns=-\r\n"}},
                {**base, "description": {"type": "pranswer", "sdp": MINIMAL_SDP}},
                {**base, "to": "nobody", "description": OFFER},
                {**base, "to": consult.vet.id, "description": OFFER},  # to oneself
                {**base, "to": "sfu", "description": OFFER},  # not an sfu call
                {**base, "candidate": {"candidate": "x" * 5000, "sdpMid": "0"}},
            ],
            "too_large": [
                {**base, "description": {"type": "offer", "sdp": HUGE_SDP}},
            ],
            "not_found": [
                {**base, "to": str(uuid4()), "description": OFFER},
                {**base, "to": consult.invited[0].id, "description": OFFER},  # not in the call
            ],
        }
        assert len(HUGE_SDP) > MAX_SDP_BYTES
        for code, payloads in refusals.items():
            for payload in payloads:
                assert error_code(await vet.call("signal", payload)) == code, payload
        assert error_code(await vet.call("signal", None)) == "invalid"
        assert error_code(await vet.call("join", {"consult": consult.id})) == "invalid"
        assert error_code(await vet.call("shout", {"consult_id": consult.id})) == "invalid"
        stats = {"consult_id": consult.id, "rtt_ms": 10, "packet_loss": 3, "jitter_ms": 1}
        assert error_code(await vet.call("stats", stats)) == "invalid"  # loss is a fraction
        assert not owner.received["signal"]

        # The invitee waits in the lobby: no signals, no admitting others, no stats.
        assert (await join(guest, consult))["waiting"] is True
        assert error_code(await guest.call("signal", {**base, "description": OFFER})) == (
            "forbidden"
        )
        admit = {"consult_id": consult.id, "user_id": consult.invited[0].id}
        assert error_code(await guest.call("admit", admit)) == "forbidden"
        assert error_code(await owner.call("admit", admit)) == "forbidden"
        unknown = {"consult_id": consult.id, "user_id": str(uuid4())}
        assert error_code(await vet.call("admit", unknown)) == "not_found"
        for event in ("consent", "record"):  # consent takes `granted`, record `action`
            ack = await vet.call(event, {"consult_id": consult.id, "action": "yes"})
            assert error_code(ack) == "invalid"
        record = {"consult_id": consult.id, "action": "start"}
        assert error_code(await guest.call("record", record)) == "forbidden"

        # After all that, the connection carries a good signal and a trickled candidate.
        candidate = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"}
        candidate |= {"sdpMid": "0", "sdpMLineIndex": 0}
        good = {**base, "description": OFFER, "candidate": candidate}
        assert (await vet.call("signal", good))["ok"]
        relayed = await owner.wait_for("signal")
        assert relayed == {
            "consult_id": consult.id,
            "from": consult.vet.id,
            "description": OFFER,
            "candidate": candidate,
        }
        assert len(owner.received["signal"]) == 1
        assert all(client.sio.connected for client in (vet, owner, guest))
    finally:
        for client in (vet, owner, guest):
            await client.close()
