"""The pages in a real browser (Debian's chromium through Playwright), against the real hub,
API, PostgreSQL, Redis and scoring worker: a consult between an owner and a vet, a reconnect,
and a moderator deleting a flagged message; axe-core at 360 px and 1280 px on each page."""

from __future__ import annotations

import json
import re
from typing import Any
from uuid import uuid4

import aiohttp
import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from domain.chat.messages import store_message
from domain.chat.moderation import raise_model_flag
from domain.identity import Role
from domain.identity.tokens import Principal, issue_access_token
from pawhub.settings import Settings
from realtime.server import SOCKET_SERVER
from tests.conftest import BookPet
from tests.e2e.browser import (
    Servers,
    at_each_width,
    new_person,
    sign_in,
)
from tests.recording_client import ChatClient
from tests.scoring_worker import running_scoring_worker

pytestmark = pytest.mark.slow

QUEUE_PAGE = 50  # the flags the moderator dashboard draws at a time (web/js/moderation.js PAGE)

# Keeps each page's RTCPeerConnections reachable for getStats (an init script runs over CDP,
# outside the page's CSP).
RECORD_PEER_CONNECTIONS = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__peerConnections = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.__peerConnections.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
})();
"""
FRAMES_DECODED = """
async () => {
  let frames = 0;
  for (const pc of window.__peerConnections) {
    if (pc.connectionState === "closed") continue;
    (await pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "video") frames += r.framesDecoded || 0;
    });
  }
  return frames;
}
"""


async def named_booking(book_pet: BookPet, pool: asyncpg.Pool) -> Any:
    booked = await book_pet()
    for user, name in ((booked.owner, "Olive Owner"), (booked.vet, "Vera Vet")):
        await pool.execute("UPDATE users SET name = $2 WHERE id = $1", user.id, name)
    return booked


async def open_consult(
    browser: Browser, servers: Servers, name: str, email: str, *init_scripts: str
) -> Page:
    """A person signed in and past the pre-call check, with `init_scripts` run on their pages."""
    context, page = await new_person(browser, name)
    for script in (RECORD_PEER_CONNECTIONS, *init_scripts):
        await context.add_init_script(script)
    await sign_in(page, servers.hub_url, "/app/", email)
    await page.get_by_role("link", name="Join consult").click()
    await page.get_by_role("button", name="Join").click()
    return page


async def admitted_call(
    browser: Browser, servers: Servers, booked: Any, *owner_scripts: str
) -> tuple[Page, Page]:
    """The owner's and the vet's pages, the owner admitted (`owner_scripts` run on theirs)."""
    owner = await open_consult(browser, servers, "owner", booked.owner.email, *owner_scripts)
    vet = await open_consult(browser, servers, "vet", booked.vet.email)
    await vet.get_by_role("button", name="Admit").click()
    return owner, vet


async def frames_decoded(page: Page) -> int:
    return int(await page.evaluate(FRAMES_DECODED))


CALL_STATE = """
async () => ({
  notice: document.getElementById("notice").textContent,
  status: document.querySelector(".lobby-status").textContent,
  online: navigator.onLine,
  peers: await Promise.all(window.__peerConnections.map(async (pc) => {
    const candidates = { local: 0, remote: 0, pairs: 0 };
    if (pc.connectionState !== "closed") {
      (await pc.getStats()).forEach((r) => {
        if (r.type === "local-candidate") candidates.local += 1;
        if (r.type === "remote-candidate") candidates.remote += 1;
        if (r.type === "candidate-pair") candidates.pairs += 1;
      });
    }
    return {
      connection: pc.connectionState,
      ice: pc.iceConnectionState,
      gathering: pc.iceGatheringState,
      signaling: pc.signalingState,
      candidates,
      directions: pc.getTransceivers().map((t) => `${t.receiver.track.kind}:${t.currentDirection}`),
    };
  })),
})
"""


async def assert_remote_video_plays(page: Page) -> None:
    video = page.get_by_role("region", name="Call").locator("video[aria-label='Remote video']")
    await expect(video).to_have_count(1)
    try:
        await page.wait_for_function(
            "() => document.querySelector(\"video[aria-label='Remote video']\")?.videoWidth > 0",
            timeout=30_000,
        )
    except PlaywrightTimeout:
        raise AssertionError(f"no remote video: {await page.evaluate(CALL_STATE)}") from None
    # The tile can still show the last frame of a connection just replaced by a new one that has
    # decoded nothing yet: playing is frames decoded on the open connections, and more later.
    samples = [await frames_decoded(page)]
    for _ in range(40):
        if len(samples) > 1 and samples[-1] > samples[-2] > 0:
            return
        await page.wait_for_timeout(500)
        samples.append(await frames_decoded(page))
    raise AssertionError(f"frozen remote video {samples}: {await page.evaluate(CALL_STATE)}")


def chat_log(page: Page) -> Any:
    return page.get_by_role("log", name="Chat")


async def send(page: Page, body: str) -> None:
    await page.get_by_label("Message").fill(body)
    await page.get_by_role("button", name="Send").click()


def sockets_of(server: Any, user_agent: str) -> list[Any]:
    """The hub's engine.io connections of one browser (its user agent names it)."""
    return [
        socket
        for sid, socket in list(server.eio.sockets.items())
        if user_agent in server.environ.get(sid, {}).get("HTTP_USER_AGENT", "")
    ]


async def drop_sockets_of(server: Any, user_agent: str) -> int:
    """The hub closes the engine.io connections of one browser."""
    dropped = sockets_of(server, user_agent)
    for socket in dropped:
        await socket.close(wait=False, abort=True)
    return len(dropped)


async def cut_off(page: Page, server: Any, user_agent: str) -> None:
    """The browser loses its network and the hub its connections. Chromium closes some of its
    websockets itself as it goes offline, sometimes before the hub is asked to."""
    assert sockets_of(server, user_agent), "the hub holds no connection of this browser"
    await page.context.set_offline(True)
    await drop_sockets_of(server, user_agent)


async def test_sign_in_home_and_pre_call_pages(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    booked = await named_booking(book_pet, pool)
    _, page = await new_person(browser, "owner")
    await page.goto(f"{servers.hub_url}/app/")
    assert await at_each_width(page, "sign-in") == []
    await page.get_by_label("Email").fill(booked.owner.email)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Wrong email or password.")

    await sign_in(page, servers.hub_url, "/app/", booked.owner.email)
    await expect(page.get_by_text("Rex with Vera Vet")).to_be_visible()
    assert await at_each_width(page, "home") == []
    await page.get_by_role("link", name="Join consult").click()
    await expect(page.get_by_label("Camera preview")).to_be_visible()
    await page.wait_for_function(
        "() => document.querySelector(\"video[aria-label='Camera preview']\").videoWidth > 0"
    )
    # The fake microphone plays a tone: the level meter moves; each picker lists its device.
    await page.wait_for_function("() => document.getElementById('mic-level').value > 0.05")
    for picker in ("Camera", "Microphone"):
        assert await page.get_by_label(picker, exact=True).locator("option").count() >= 1
    assert await at_each_width(page, "pre-call") == []

    async with page.expect_response("**/v1/auth/logout") as logout:
        await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    signed_out = await logout.value
    assert signed_out.status == 204
    # The refresh token the page held is revoked: it no longer buys a session.
    refresh_token = json.loads(signed_out.request.post_data or "{}")["refresh_token"]
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{servers.api_url}/v1/auth/refresh", json={"refresh_token": refresh_token}
        ) as refused,
    ):
        assert refused.status == 401


# What the page sees when the browser (or the person) refuses the camera and microphone.
DENY_MEDIA = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""


async def test_a_blocked_camera_gets_a_helpful_screen_and_the_person_can_still_join(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    booked = await named_booking(book_pet, pool)
    context, page = await new_person(browser, "owner")
    await context.add_init_script(DENY_MEDIA)
    await sign_in(page, servers.hub_url, "/app/", booked.owner.email)
    await page.get_by_role("link", name="Join consult").click()
    problem = page.get_by_role("alert").filter(has_text="blocked the camera and microphone")
    await expect(problem).to_contain_text("choose Allow, then reload this page")
    await page.get_by_role("button", name="Join").click()
    await expect(page.get_by_text("Waiting for Dr Vera Vet")).to_be_visible()
    await send(page, "My camera is blocked, can we chat?")
    await expect(chat_log(page)).to_contain_text("My camera is blocked, can we chat?")


# A browser that refuses audible autoplay until the person next interacts with the page, as
# Chromium does without a prior gesture (the test browser allows it:
# --autoplay-policy=no-user-gesture-required).
BLOCK_AUTOPLAY = """
(() => {
  const play = HTMLMediaElement.prototype.play;
  let refused = false;
  let allowed = false;
  document.addEventListener("click", (e) => { if (refused && e.isTrusted) allowed = true; }, true);
  HTMLMediaElement.prototype.play = function () {
    if (!this.muted && !allowed) {
      refused = true;
      return Promise.reject(new DOMException("play() needs a user gesture", "NotAllowedError"));
    }
    return play.call(this);
  };
})();
"""


async def test_blocked_autoplay_offers_a_click_to_enable_audio(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    booked = await named_booking(book_pet, pool)
    owner, _ = await admitted_call(browser, servers, booked, BLOCK_AUTOPLAY)
    enable = owner.get_by_role("button", name="Click to enable audio")
    await expect(enable).to_be_visible()
    await enable.click()
    await expect(enable).to_be_hidden()
    await assert_remote_video_plays(owner)
    paused = "() => document.querySelector(\"video[aria-label='Remote video']\").paused"
    assert await owner.evaluate(paused) is False


# A lossy network as the page measures it: every inbound stream reports as many packets lost as
# received, and more.
LOSSY_NETWORK = """
(() => {
  const getStats = RTCPeerConnection.prototype.getStats;
  RTCPeerConnection.prototype.getStats = async function (...args) {
    const worse = new Map();
    (await getStats.apply(this, args)).forEach((stat, id) => {
      const lost = (stat.packetsReceived || 0) + 10;
      worse.set(id, stat.type === "inbound-rtp" ? { ...stat, packetsLost: lost } : stat);
    });
    return worse;
  };
})();
"""


async def test_a_poor_connection_gets_a_hint_and_the_other_side_sees_its_level(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    booked = await named_booking(book_pet, pool)
    owner, vet = await admitted_call(browser, servers, booked, LOSSY_NETWORK)
    await assert_remote_video_plays(owner)  # connected: its stats report inbound streams now
    await expect(owner.get_by_text("Your connection is poor (no connection).")).to_be_visible(
        timeout=15_000
    )
    owner_quality = vet.locator(f"figure[data-user='{booked.owner.id}'] .quality")
    await expect(owner_quality).to_have_attribute("data-level", "0")


async def test_consent_is_given_and_withdrawn_and_the_vet_hears_of_both(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    booked = await named_booking(book_pet, pool)
    owner, vet = await admitted_call(browser, servers, booked)
    recording = vet.get_by_role("region", name="Recording")

    await owner.get_by_role("button", name="I consent").click()
    await expect(owner.get_by_text("You consented to recording.")).to_be_visible()
    await expect(recording).to_contain_text("Olive Owner consented to recording.")
    await owner.get_by_role("button", name="Withdraw consent").click()
    await expect(owner.get_by_text("You withdrew your consent.")).to_be_visible()
    await expect(recording).to_contain_text("Olive Owner withdrew consent for recording.")
    await expect(owner.get_by_role("button", name="I consent")).to_be_visible()

    ledger = await pool.fetch(
        """SELECT granted, user_agent FROM consent_ledger l JOIN consults c ON c.id = l.consult_id
            WHERE c.booking_id = $1 AND l.user_id = $2 ORDER BY l.id""",
        booked.booking.id,
        booked.owner.id,
    )
    assert [row["granted"] for row in ledger] == [True, False]
    assert all("pawhub-e2e/owner" in row["user_agent"] for row in ledger)


async def test_only_the_vet_is_told_when_recording_storage_is_out_of_reach(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    # The hub's side is tested in tests/signaling/test_rtc_recording_storage.py; here the
    # pages get the event from the real hub, sent to every /rtc connection.
    booked = await named_booking(book_pet, pool)
    owner, vet = await admitted_call(browser, servers, booked)
    consult_id = await pool.fetchval(
        "SELECT id FROM consults WHERE booking_id = $1", booked.booking.id
    )
    buffered, limit = 1_700_000_000, 2 * 1024**3
    storage = {
        "consult_id": str(consult_id),
        "recording_id": str(uuid4()),
        "near_full": True,
        "buffered_bytes": buffered,
        "limit_bytes": limit,
    }
    hub = servers.hub[SOCKET_SERVER]
    await hub.emit("recording_storage", storage, namespace="/rtc")
    recording = vet.get_by_role("region", name="Recording")
    await expect(recording.get_by_role("alert")).to_contain_text(
        f"Recording storage is out of reach: {buffered / 1024**2:.1f} MB of"
        f" {limit / 1024**2:.1f} MB waits on the server."
    )
    assert await at_each_width(vet, "consult-recording-storage") == []
    await hub.emit("recording_storage", {**storage, "near_full": False}, namespace="/rtc")
    await expect(
        recording.get_by_role("status").filter(has_text="Recording storage is back")
    ).to_be_visible()
    await expect(owner.get_by_text("Recording storage")).to_have_count(0)


async def test_owner_and_vet_meet_chat_and_recover_after_a_reconnect(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    booked = await named_booking(book_pet, pool)
    owner = await open_consult(browser, servers, "owner", booked.owner.email)
    await expect(owner.get_by_text("Waiting for Dr Vera Vet")).to_be_visible()
    vet = await open_consult(browser, servers, "vet", booked.vet.email)
    waiting_room = vet.get_by_role("list", name="Waiting room")
    await expect(waiting_room).to_contain_text("Olive Owner")
    await vet.get_by_role("button", name="Deny").click()
    await expect(owner.get_by_text("The vet could not let you in")).to_be_visible()
    await expect(waiting_room).not_to_contain_text("Olive Owner")
    await owner.get_by_role("button", name="Ask to join again").click()
    await expect(waiting_room).to_contain_text("Olive Owner")
    assert await at_each_width(vet, "consult-lobby-vet") == []
    await vet.get_by_role("button", name="Admit").click()

    await assert_remote_video_plays(owner)
    await assert_remote_video_plays(vet)

    await send(owner, "Hello doctor, Rex is limping")
    await expect(chat_log(vet)).to_contain_text("Hello doctor, Rex is limping")
    await send(vet, "Let me see his left paw")
    await expect(chat_log(owner)).to_contain_text("Let me see his left paw")

    # Recording belongs to another issue and answers differently as it grows (unavailable,
    # consent_required, or recording): each page shows the answer as a sentence or a status.
    await expect(owner.get_by_role("status").filter(has_text="Not recording")).to_be_visible()
    await vet.get_by_role("button", name="Start recording").click()
    await expect(vet.get_by_role("region", name="Recording")).to_contain_text(
        re.compile(r"The recording could not start: .+\.|● Recording")
    )
    await owner.get_by_role("button", name="I consent").click()
    await expect(owner.get_by_role("region", name="Recording")).to_contain_text(
        re.compile(r"You consented to recording\.|Your consent could not be recorded: .+\.")
    )

    assert await at_each_width(owner, "consult-call-owner") == []

    # The owner sees the vet's connection quality (from the vet's stats) on the vet's tile.
    vet_caption = owner.locator(f"figure[data-user='{booked.vet.id}'] figcaption")
    await expect(vet_caption.get_by_label("Connection quality")).to_contain_text(
        re.compile(r"[▮▯]{5} (no connection|very poor|poor|fair|good|excellent)")
    )

    # The owner sees the vet's microphone and camera state on the vet's tile.
    await vet.get_by_role("button", name="Mute").click()
    await expect(vet_caption).to_contain_text("Muted")
    await vet.get_by_role("button", name="Unmute").click()
    await expect(vet_caption).not_to_contain_text("Muted")

    # Camera off really stops the track: the owner decodes no more of the vet's frames.
    await vet.get_by_role("button", name="Camera off").click()
    await expect(vet.get_by_role("button", name="Camera on")).to_be_visible()
    await expect(vet_caption).to_contain_text("Camera off")
    await owner.wait_for_timeout(1000)
    stalled = await frames_decoded(owner)
    await owner.wait_for_timeout(1500)
    assert await frames_decoded(owner) == stalled
    await vet.get_by_role("button", name="Camera on").click()
    await expect(vet_caption).not_to_contain_text("Camera off")
    await owner.wait_for_timeout(1500)
    assert await frames_decoded(owner) > stalled

    # Leave ends the vet's call at once: the owner's tile for the vet goes.
    await vet.get_by_role("button", name="Leave").click()
    await expect(vet.get_by_role("heading", name="You left the consult")).to_be_visible()
    await expect(owner.locator("video[aria-label='Remote video']")).to_have_count(0)


async def test_reconnect_shows_what_was_missed_once_in_order(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    booked = await named_booking(book_pet, pool)
    owner, vet = await admitted_call(browser, servers, booked)
    await send(owner, "before the drop")
    await expect(chat_log(vet)).to_contain_text("before the drop")

    await cut_off(owner, servers.hub[SOCKET_SERVER], "pawhub-e2e/owner")
    await expect(owner.get_by_text("You are offline")).to_be_visible()
    missed = [f"missed {n}" for n in range(1, 4)]
    for body in missed:
        await send(vet, body)
    await expect(chat_log(vet)).to_contain_text(missed[-1])
    await owner.context.set_offline(False)
    await expect(owner.get_by_text("You are offline")).to_be_hidden()
    await expect(chat_log(owner)).to_contain_text(missed[-1])
    bodies = await chat_log(owner).locator("li .body").all_inner_texts()
    assert bodies == ["before the drop", *missed]
    await assert_remote_video_plays(owner)  # the call was renegotiated


async def test_a_moderator_sees_a_flag_live_and_deletes_the_message(
    browser: Browser,
    servers: Servers,
    book_pet: BookPet,
    pool: asyncpg.Pool,
    make_user: Any,
    settings: Settings,
) -> None:
    booked = await named_booking(book_pet, pool)
    moderator, _ = await make_user(Role.moderator, "Mona Moderator")
    _, dashboard = await new_person(browser, "moderator")
    await sign_in(dashboard, servers.hub_url, "/app/moderation", moderator.email)
    flags = dashboard.get_by_role("list", name="Flags")
    await expect(flags).to_be_visible()
    owner = await open_consult(browser, servers, "owner", booked.owner.email)
    await expect(owner.get_by_text("Waiting for Dr Vera Vet")).to_be_visible()

    room = str(
        await pool.fetchval("SELECT room FROM consults WHERE booking_id = $1", booked.booking.id)
    )
    async with running_scoring_worker(servers.settings):
        vet = await ChatClient.connect(
            servers.hub_url, issue_access_token(booked.vet, settings.jwt_secret)
        )
        try:
            assert (await vet.call("join", {"room": room}))["ok"]
            abuse = f"f4ck you, you useless quack {room[:8]}"  # no other flag's text
            sent = await vet.call("send", {"room": room, "client_id": "abuse", "body": abuse})
            assert sent["ok"], sent
            await expect(chat_log(owner)).to_contain_text(abuse)

            flag = flags.get_by_role("listitem").filter(has_text=abuse)
            await expect(flag).to_be_visible(timeout=30_000)  # scored by the worker, pushed live
            await flag.get_by_role("button", name="Watch").click()
            watched = dashboard.get_by_role("log", name="Watched conversation")
            await expect(watched).to_contain_text(abuse)
            assert await at_each_width(dashboard, "moderation-dashboard") == []

            await flag.get_by_role("button", name="Delete message").click()
            await expect(dashboard.get_by_text("Write a reason before acting")).to_be_visible()
            await dashboard.get_by_label("Reason").fill("abusive language toward the owner")
            await flag.get_by_role("button", name="Delete message").click()

            await expect(chat_log(owner)).not_to_contain_text(abuse)
            await expect(chat_log(owner)).to_contain_text("This message was removed.")
            await expect(watched).to_contain_text("This message was removed.")
            await expect(flag).to_have_count(0)  # no longer open: it left the queue
            await dashboard.get_by_label("Status").select_option(label="Any status")
            trail = flag.get_by_role("list", name="Audit trail")
            await expect(trail).to_contain_text("Mona Moderator deleted the message")
            await expect(trail).to_contain_text("abusive language toward the owner")
            await at_each_width(dashboard, "moderation-after-delete")
        finally:
            await vet.close()


async def test_the_queue_draws_fifty_flags_at_a_time(
    browser: Browser, servers: Servers, room: Any, pool: asyncpg.Pool, make_user: Any
) -> None:
    room_id, owner, _ = room
    sender = Principal(user_id=owner[0].id, name=owner[0].name, role=owner[0].role)
    for n in range(QUEUE_PAGE + 10):
        message, _ = await store_message(pool, room_id, sender, f"q{n}", f"queued {n}")
        await raise_model_flag(pool, room_id, message.id, {"insult": 0.9}, "insult", "test", "1")
    moderator, _ = await make_user(Role.moderator, "Mona Moderator")
    _, dashboard = await new_person(browser, "moderator")
    await sign_in(dashboard, servers.hub_url, "/app/moderation", moderator.email)
    cards = dashboard.get_by_role("list", name="Flags").locator(":scope > li[data-flag]")
    await expect(cards).to_have_count(QUEUE_PAGE)
    await expect(cards.first).to_contain_text(f"queued {QUEUE_PAGE + 9}")  # newest first
    await dashboard.get_by_role("button", name="Load more flags").click()
    await expect(cards.nth(QUEUE_PAGE)).to_be_visible()  # ours alone are 10 more
    assert QUEUE_PAGE < await cards.count() <= 2 * QUEUE_PAGE
