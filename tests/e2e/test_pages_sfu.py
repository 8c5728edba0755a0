"""A consult that moves to the hub's SFU mid-call, in a real browser (Debian's chromium through
Playwright) against the real hub, API, PostgreSQL and Redis: an owner and a vet meet peer to
peer, both consent, the vet starts recording, and each page closes its p2p connection and
decodes the other's video from the SFU, in a tile named after them; Camera off still stops the
frames, and after a reconnect the page renegotiates with the room. When the replica hosting the
room dies (a hub process of the test's own, SIGKILLed), both pages, told `sfu_lost` by the
replica they are connected to, open a new connection and see each other again."""

from __future__ import annotations

import os
import signal
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from pawhub.hub import REDIS
from realtime.protocol import ErrorCode, EventError
from realtime.server import SOCKET_SERVER
from signaling.service import CallService
from signaling.sfu_claims import SfuClaims
from tests.conftest import BookPet
from tests.e2e.browser import Servers, at_each_width
from tests.e2e.hubs import start_hub_process
from tests.e2e.test_pages import (
    CALL_STATE,
    admitted_call,
    assert_remote_video_plays,
    drop_sockets_of,
    named_booking,
)

pytestmark = pytest.mark.slow

# The open connections of the page (test_pages' init script keeps them all), each with its index
# and the stream ids (msid) of the tracks its remote side sends.
OPEN_CONNECTIONS = """
() => window.__peerConnections.flatMap((pc, index) => {
  if (pc.connectionState === "closed") return [];
  const sections = (pc.remoteDescription?.sdp || "").split("\\r\\nm=").slice(1);
  const streams = sections
    .filter((section) => /^a=(sendonly|sendrecv)$/m.test(section))
    .flatMap((section) => [...section.matchAll(/^a=msid:(\\S+)/gm)].map((match) => match[1]));
  return [{ index, streams, state: pc.connectionState }];
})
"""
FRAMES_DECODED_ON = """
async (index) => {
  let frames = 0;
  (await window.__peerConnections[index].getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video") frames += r.framesDecoded || 0;
  });
  return frames;
}
"""

# The id of the video track the remote tile plays, and the frames connection `index` decoded of it.
TILE_FRAMES = """
async (index) => {
  const video = document.querySelector("video[aria-label='Remote video']");
  const track = video?.srcObject?.getVideoTracks()[0]?.id || "";
  let frames = 0;
  (await window.__peerConnections[index].getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.trackIdentifier === track) frames = r.framesDecoded || 0;
  });
  return [track, frames];
}
"""


async def frames_on(page: Page, index: int) -> int:
    return int(await page.evaluate(FRAMES_DECODED_ON, index))


async def tile_frames(page: Page, index: int) -> tuple[str, int]:
    track, frames = await page.evaluate(TILE_FRAMES, index)
    return str(track), int(frames)


async def sfu_connection(page: Page, publisher_id: str, after: int) -> int:
    """The index of the page's one open connection, opened after the first `after`, on which
    the room sends `publisher_id`'s tracks; once it decodes their video."""
    try:
        await page.wait_for_function(
            f"""() => {{
              const open = ({OPEN_CONNECTIONS})();
              return open.length === 1 && open[0].index >= {after}
                && open[0].streams.includes("{publisher_id}");
            }}""",
            timeout=30_000,
        )
    except PlaywrightTimeout:
        raise AssertionError(f"no SFU connection: {await page.evaluate(CALL_STATE)}") from None
    (connection,) = await page.evaluate(OPEN_CONNECTIONS)
    index = int(connection["index"])
    assert set(connection["streams"]) == {publisher_id}, connection
    await page.wait_for_function(f"({FRAMES_DECODED_ON})({index}).then((f) => f > 0)")
    first = await frames_on(page, index)
    await page.wait_for_timeout(1500)
    assert await frames_on(page, index) > first
    return index


async def shows_tile_of(page: Page, name: str) -> None:
    """One remote tile, named after `name`, playing video."""
    tile = page.get_by_role("figure", name=name)
    await expect(tile.locator("video[aria-label='Remote video']")).to_have_count(1)
    await expect(page.locator("video[aria-label='Remote video']")).to_have_count(1)
    await expect(tile).to_be_visible()
    await page.wait_for_function(
        "() => document.querySelector(\"video[aria-label='Remote video']\").videoWidth > 0"
    )


async def moved_to_the_sfu(owner: Page, vet: Page, booked: Any) -> dict[str, int]:
    """Both consent, the vet records, and each page decodes the other's video from the SFU:
    the index of each page's SFU connection."""
    p2p = {
        "owner": await owner.evaluate("window.__peerConnections.length"),
        "vet": await vet.evaluate("window.__peerConnections.length"),
    }
    for page in (owner, vet):
        await page.get_by_role("button", name="I consent").click()
        await expect(page.get_by_text("You consented to recording.")).to_be_visible()
    await vet.get_by_role("button", name="Start recording").click()
    for page in (owner, vet):
        await expect(page.get_by_role("status").filter(has_text="● Recording")).to_be_visible()
    return {
        "owner": await sfu_connection(owner, str(booked.vet.id), p2p["owner"]),
        "vet": await sfu_connection(vet, str(booked.owner.id), p2p["vet"]),
    }


async def test_recording_moves_the_call_to_the_sfu_and_both_still_see_each_other(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    booked = await named_booking(book_pet, pool)
    owner, vet = await admitted_call(browser, servers, booked)
    await assert_remote_video_plays(owner)
    await assert_remote_video_plays(vet)
    sfu = await moved_to_the_sfu(owner, vet, booked)
    await shows_tile_of(owner, "Vera Vet")
    await shows_tile_of(vet, "Olive Owner")
    await expect(owner.locator("#notice")).to_be_hidden()
    assert await at_each_width(owner, "consult-sfu-owner") == []

    # Camera off stops the frames the room forwards; Camera on brings them back.
    await vet.get_by_role("button", name="Camera off").click()
    await expect(vet.get_by_role("button", name="Camera on")).to_be_visible()
    await owner.wait_for_timeout(1000)
    stalled = await frames_on(owner, sfu["owner"])
    await owner.wait_for_timeout(1500)
    assert await frames_on(owner, sfu["owner"]) == stalled
    await vet.get_by_role("button", name="Camera on").click()
    await owner.wait_for_timeout(2000)
    assert await frames_on(owner, sfu["owner"]) > stalled

    # A reconnect: the hub drops the owner's connection to the room, the page offers anew, and
    # the vet's tile plays the owner's new track.
    before, _ = await tile_frames(vet, sfu["vet"])
    assert await drop_sockets_of(servers.hub[SOCKET_SERVER], "pawhub-e2e/owner") > 0
    await sfu_connection(owner, str(booked.vet.id), sfu["owner"] + 1)
    await vet.wait_for_function(
        f"({TILE_FRAMES})({sfu['vet']})"
        f".then(([track, frames]) => track !== {before!r} && frames > 0)",
        timeout=30_000,
    )
    track, frames = await tile_frames(vet, sfu["vet"])
    await vet.wait_for_timeout(1500)
    assert await tile_frames(vet, sfu["vet"]) > (track, frames), "the owner's video froze"
    await shows_tile_of(vet, "Olive Owner")
    await expect(owner.get_by_role("status").filter(has_text="● Recording")).to_be_visible()


async def test_an_offer_the_hub_could_not_pass_on_goes_again_on_a_new_connection(
    browser: Browser,
    servers: Servers,
    book_pet: BookPet,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The owner's first offer to the SFU is answered `unavailable` (the replica hosting the
    room out of reach for a moment): the page replaces the connection after a pause and the
    call goes on through the SFU, no error shown."""
    booked = await named_booking(book_pet, pool)
    refused: list[str] = []
    relay = CallService.relay

    async def unavailable_once(service: CallService, *args: Any, **kwargs: Any) -> None:
        _, user_id, _, to, description, *_ = args
        offer = description is not None and description.type == "offer"
        if to == "sfu" and offer and user_id == booked.owner.id and not refused:
            refused.append(description.type)
            raise EventError(ErrorCode.unavailable, "the media server is out of reach")
        await relay(service, *args, **kwargs)

    monkeypatch.setattr(CallService, "relay", unavailable_once)
    owner, vet = await admitted_call(browser, servers, booked)
    await assert_remote_video_plays(owner)
    p2p = await owner.evaluate("window.__peerConnections.length")
    sfu = await moved_to_the_sfu(owner, vet, booked)
    assert refused == ["offer"]
    assert sfu["owner"] == p2p + 1  # the refused connection's replacement
    await shows_tile_of(owner, "Vera Vet")
    await shows_tile_of(vet, "Olive Owner")
    await expect(owner.locator("#notice")).to_be_hidden()


async def test_a_room_whose_replica_dies_comes_back_on_a_live_one(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    booked = await named_booking(book_pet, pool)
    consult = booked.booking.consult_id
    assert isinstance(consult, UUID)
    redis, prefix = servers.hub[REDIS], servers.settings.redis_namespace
    leases = f"{prefix}:rtc:replicas"
    live = {raw.decode() for raw in await redis.zrange(leases, 0, -1)}
    # A short lease, so that its death is noticed in seconds; long enough that a loaded
    # machine's stalls do not let it lapse before the kill.
    doomed = await start_hub_process(servers.settings, RTC_REPLICA_LEASE_S="5")
    try:
        (doomed_id,) = {raw.decode() for raw in await redis.zrange(leases, 0, -1)} - live
        # The other replica claims the consult's room: the pages, connected to this hub, have
        # their signals carried to it, and their media goes to it.
        assert await SfuClaims(redis, prefix, doomed_id).claim(consult) == doomed_id
        owner, vet = await admitted_call(browser, servers, booked)
        await assert_remote_video_plays(owner)
        sfu = await moved_to_the_sfu(owner, vet, booked)
        assert await SfuClaims(redis, prefix, doomed_id).host_of(consult) == doomed_id

        os.kill(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait()
        # Only `sfu_lost` makes a page open a new connection while its socket stays up (it
        # does not repair a failed one): each page's new connection decodes the other's video.
        await sfu_connection(owner, str(booked.vet.id), sfu["owner"] + 1)
        await sfu_connection(vet, str(booked.owner.id), sfu["vet"] + 1)
        assert await SfuClaims(redis, prefix, doomed_id).host_of(consult) not in (None, doomed_id)
        await shows_tile_of(owner, "Vera Vet")
        await shows_tile_of(vet, "Olive Owner")
    finally:
        doomed.stop()
