"""Helpers for the `/rtc` tests: waiting on conditions, loopback ICE, a minimal valid SDP, and
the lobby dance that brings a consult's people into its call."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aioice.ice
import pytest

from bench.media.consults import Person, VideoConsult
from bench.media.rtc_client import Ack, MediaPeer, RtcClient

# Parses (v=0, one m= line) but nobody could connect with it: for tests of the relay alone.
MINIMAL_SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n"
)


def use_loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gather host candidates on 127.0.0.1 alone (aioice skips loopback by default); this
    covers the hub's SfuRoom too, which runs in the test process."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


def error_code(ack: Ack) -> str:
    assert ack["ok"] is False, ack
    code: str = ack["error"]["code"]
    return code


async def join(client: RtcClient, consult: VideoConsult, **extra: object) -> Ack:
    ack = await client.call("join", {"consult_id": consult.id, **extra})
    assert ack["ok"], ack
    return ack


@contextlib.asynccontextmanager
async def connected(url: str, *people: Person) -> AsyncIterator[list[RtcClient]]:
    """A `/rtc` connection for each of `people`, closed on the way out."""
    clients = [await RtcClient.connect(url, person.token) for person in people]
    try:
        yield clients
    finally:
        for client in clients:
            await client.close()


async def enter_call(
    consult: VideoConsult, vet: RtcClient, guests: list[tuple[RtcClient, Person]]
) -> None:
    """The vet joins, then each guest joins, waits in the lobby and is admitted."""
    await join(vet, consult)
    for client, person in guests:
        ack = await join(client, consult)
        assert ack["waiting"] is True and ack["peers"] == []
        await vet.wait_for("lobby", lambda event, who=person.id: event["user_id"] == who)
        assert (await vet.call("admit", {"consult_id": consult.id, "user_id": person.id}))["ok"]
        await client.wait_for("admitted")


async def sfu_peers(
    consult: VideoConsult, vet: RtcClient, owner: RtcClient, lumas: dict[str, int]
) -> dict[str, MediaPeer]:
    """The vet's and the owner's peers in the consult's SFU room, each sending its luma and
    offering."""
    peers = {
        "vet": vet.peer(consult.id, "sfu", lumas["vet"]),
        "owner": owner.peer(consult.id, "sfu", lumas["owner"]),
    }
    for peer in peers.values():
        await peer.offer()
    return peers
