"""The peer side of `join_latency.py`: runs consults made elsewhere as a vet and an owner, each
an aiortc peer, and times join -> ICE connected -> first decoded frame.

Kept apart from the driver so that worker processes (multiprocessing, spawn) import it by
name: each worker runs its share of consults in an event loop of its own and returns timings.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bench.media.consults import VideoConsult
from bench.media.rtc_client import MediaPeer, RtcClient

LUMAS = {"vet": 50, "owner": 120}
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Timing:
    ice_s: float
    first_frame_s: float


@dataclass(frozen=True)
class Ticket:
    """What a peer process needs of a consult (plain strings, cheap to pickle)."""

    consult_id: str
    vet_id: str
    vet_token: str
    owner_id: str
    owner_token: str

    @classmethod
    def of(cls, consult: VideoConsult) -> Ticket:
        return cls(
            consult.id, consult.vet.id, consult.vet.token, consult.owner.id, consult.owner.token
        )


async def _until_first_frame(peer: MediaPeer) -> None:
    while peer.first_frame_at is None or peer.connected_at is None:
        await asyncio.sleep(0.005)


async def run_consult(hub_url: str, ticket: Ticket, mode: str) -> list[Timing]:
    vet = await RtcClient.connect(hub_url, ticket.vet_token)
    owner = await RtcClient.connect(hub_url, ticket.owner_token)
    remote = {"vet": ticket.owner_id, "owner": ticket.vet_id} if mode == "p2p" else None
    peers = {
        name: client.peer(ticket.consult_id, remote[name] if remote else "sfu", LUMAS[name])
        for name, client in (("vet", vet), ("owner", owner))
    }
    try:
        started = {"vet": time.monotonic()}
        join = {"consult_id": ticket.consult_id, **({"mode": "sfu"} if mode == "sfu" else {})}
        assert (await vet.call("join", join))["ok"]
        if mode == "sfu":
            await peers["vet"].offer()
        started["owner"] = time.monotonic()
        assert (await owner.call("join", join))["ok"]
        await vet.wait_for("lobby")
        admit = {"consult_id": ticket.consult_id, "user_id": ticket.owner_id}
        assert (await vet.call("admit", admit))["ok"]
        await owner.wait_for("admitted")
        await (peers["owner"] if mode == "sfu" else peers["vet"]).offer()
        await asyncio.wait_for(
            asyncio.gather(*(_until_first_frame(peer) for peer in peers.values())), TIMEOUT_S
        )
        return [
            Timing(
                ice_s=(peer.connected_at or 0) - started[name],
                first_frame_s=(peer.first_frame_at or 0) - started[name],
            )
            for name, peer in peers.items()
        ]
    finally:
        await vet.close()
        await owner.close()


async def _run_batch(
    hub_url: str, tickets: list[Ticket], mode: str, start_at: float
) -> list[Timing]:
    # Wall-clock start shared by every worker of a batch, so their consults begin together.
    await asyncio.sleep(max(0.0, start_at - time.time()))
    batches = await asyncio.gather(*(run_consult(hub_url, ticket, mode) for ticket in tickets))
    return [timing for batch in batches for timing in batch]


def run_batch(hub_url: str, tickets: list[Ticket], mode: str, start_at: float) -> list[Timing]:
    """Worker entry point: run `tickets` at once, from `start_at` (time.time()), in a new loop."""
    return asyncio.run(_run_batch(hub_url, tickets, mode, start_at))


def worker_ready() -> int:
    """A no-op task, to have every worker started and its imports done before timing."""
    time.sleep(0.3)
    return 0
