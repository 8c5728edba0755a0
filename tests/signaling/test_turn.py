"""TURN REST-API credentials against a real coturn, and two aiortc peers relayed through it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time

import pytest
from aioice import stun, turn
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
)

from signaling.turn import DEFAULT_TTL_S, ice_servers, turn_credential
from tests.signaling.conftest import TURN_SECRET, Coturn


def test_credential_follows_the_coturn_rest_api() -> None:
    credential = turn_credential("s3cret", "user-42", now=1_700_000_000.7)

    assert credential.username == "1700003600:user-42"
    assert credential.expires_at == 1_700_000_000 + DEFAULT_TTL_S
    expected = hmac.new(b"s3cret", b"1700003600:user-42", hashlib.sha1).digest()
    assert base64.b64decode(credential.credential) == expected


def test_credential_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ttl"):
        turn_credential("s3cret", "user-42", ttl=0)


def test_ice_servers_give_credentials_to_turn_entries_only() -> None:
    urls = [
        "stun:turn.example.com:3478",
        "turn:turn.example.com:3478?transport=udp",
        "turns:turn.example.com:5349?transport=tcp",
    ]
    servers = ice_servers(urls, "s3cret", "vet-1", ttl=600, now=1000)

    assert servers == [
        {"urls": ["stun:turn.example.com:3478"]},
        {
            "urls": urls[1:],
            "username": "1600:vet-1",
            "credential": turn_credential("s3cret", "vet-1", ttl=600, now=1000).credential,
        },
    ]


def test_ice_servers_without_urls_is_empty_and_bad_schemes_raise() -> None:
    assert ice_servers([], "s3cret", "vet-1") == []
    with pytest.raises(ValueError, match="http://turn"):
        ice_servers(["http://turn.example.com"], "s3cret", "vet-1")


async def allocate(coturn: Coturn, username: str, password: str) -> None:
    """Ask coturn for a relay allocation with these credentials, then release it."""
    transport, _ = await turn.create_turn_endpoint(
        asyncio.DatagramProtocol,
        server_addr=("127.0.0.1", coturn.port),
        username=username,
        password=password,
    )
    transport.close()


async def test_coturn_allocates_for_a_valid_credential(coturn: Coturn) -> None:
    credential = turn_credential(coturn.secret, "owner-1")
    await allocate(coturn, credential.username, credential.credential)


@pytest.mark.parametrize(
    ("secret", "now"),
    [("not-the-secret", None), (TURN_SECRET, time.time() - 2 * DEFAULT_TTL_S)],
    ids=["wrong-secret", "expired"],
)
async def test_coturn_refuses_a_forged_or_expired_credential(
    coturn: Coturn, secret: str, now: float | None
) -> None:
    credential = turn_credential(secret, "owner-1", now=now)
    with pytest.raises(stun.TransactionFailed) as refused:
        await allocate(coturn, credential.username, credential.credential)
    assert refused.value.response.error_code == 401


def relay_only(coturn: Coturn, user_id: str) -> RTCConfiguration:
    servers = ice_servers([coturn.url], coturn.secret, user_id)
    return RTCConfiguration(
        iceServers=[RTCIceServer(**server) for server in servers],
        iceTransportPolicy=RTCIceTransportPolicy.RELAY,
    )


def selected_candidate_types(pc: RTCPeerConnection) -> tuple[str, str]:
    """The (local, remote) candidate types of the pair ICE nominated for the data channel."""
    assert pc.sctp is not None
    pair = pc.sctp.transport.transport._connection._nominated[1]
    return pair.local_candidate.type, pair.remote_candidate.type


async def test_two_peers_exchange_data_through_coturn_with_relay_only_ice(
    coturn: Coturn,
) -> None:
    owner = RTCPeerConnection(relay_only(coturn, "owner-1"))
    vet = RTCPeerConnection(relay_only(coturn, "vet-1"))
    try:
        channel = owner.createDataChannel("consult")
        opened = asyncio.Event()
        pong: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        channel.on("open", opened.set)
        channel.on("message", pong.set_result)

        @vet.on("datachannel")
        def echo(remote: RTCDataChannel) -> None:
            remote.on("message", lambda message: remote.send(f"pong:{message}"))

        await owner.setLocalDescription(await owner.createOffer())
        await vet.setRemoteDescription(owner.localDescription)
        await vet.setLocalDescription(await vet.createAnswer())
        await owner.setRemoteDescription(vet.localDescription)

        for description in (owner.localDescription, vet.localDescription):
            candidates = [line for line in description.sdp.splitlines() if "candidate:" in line]
            assert candidates, "coturn gave no relay candidate"
            assert all(" typ relay" in line for line in candidates)

        await asyncio.wait_for(opened.wait(), timeout=30)
        channel.send("ping")
        assert await asyncio.wait_for(pong, timeout=30) == "pong:ping"
        assert selected_candidate_types(owner) == ("relay", "relay")
        assert selected_candidate_types(vet) == ("relay", "relay")
    finally:
        await owner.close()
        await vet.close()


async def test_the_shipped_config_runs_the_rest_api_in_its_realm(shipped_coturn: Coturn) -> None:
    credential = turn_credential(shipped_coturn.secret, "vet-1")
    await allocate(shipped_coturn, credential.username, credential.credential)

    forged = turn_credential("not-the-secret", "vet-1")
    with pytest.raises(stun.TransactionFailed) as refused:
        await allocate(shipped_coturn, forged.username, forged.credential)
    assert refused.value.response.error_code == 401
    assert refused.value.response.attributes["REALM"] == "turn.pawhub.example"
