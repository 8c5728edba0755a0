"""How long a page's connections live: past their access tokens (the page refreshes its token
before it expires and its open sockets renew theirs with `auth`, so a consult longer than a
token's life goes on; here tokens live 20 s and the hub ends a session 5 s after its token
lapses), and no longer than the page (another page shown ends its call, camera and sockets)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from pawhub.settings import Settings
from realtime.limits import SocketLimits
from realtime.server import SOCKET_SERVER
from tests.conftest import BookPet
from tests.e2e.browser import Servers, serve_pages
from tests.e2e.test_pages import (
    admitted_call,
    assert_remote_video_plays,
    chat_log,
    named_booking,
    send,
    sockets_of,
)

pytestmark = pytest.mark.slow

TOKEN_TTL_S = 15  # the shortest the settings allow; the page renews 10 s in
GRACE_S = 5

# The page's own API client, with whatever access token the page holds now.
WHO_AM_I = """
async () => {
  const { api } = await import("/app/js/auth.js");
  return (await api("GET", "/v1/me")).id;
}
"""


@pytest.fixture(scope="module")
async def servers(settings: Settings) -> AsyncIterator[Servers]:
    short_lived = settings.model_copy(
        update={
            "redis_namespace": f"{settings.redis_namespace}-session",
            "access_token_ttl_s": TOKEN_TTL_S,
        }
    )
    async for running in serve_pages(short_lived, SocketLimits(session_grace_s=GRACE_S)):
        yield running


async def test_a_consult_goes_on_past_its_access_tokens_lives(
    browser: Browser,
    servers: Servers,
    book_pet: BookPet,
    pool: asyncpg.Pool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="realtime.namespace")
    booked = await named_booking(book_pet, pool)
    owner, vet = await admitted_call(browser, servers, booked)
    await send(owner, "before the tokens lapse")
    await expect(chat_log(vet)).to_contain_text("before the tokens lapse")

    # Two token lifetimes and the grace: without renewal every socket would have been ended.
    await owner.wait_for_timeout((2 * TOKEN_TTL_S + GRACE_S + 5) * 1000)
    ended = [r.getMessage() for r in caplog.records if "its token expired" in r.getMessage()]
    assert ended == []
    await send(owner, "after two token lives")
    await expect(chat_log(vet)).to_contain_text("after two token lives")
    await send(vet, "still here")
    await expect(chat_log(owner)).to_contain_text("still here")
    assert await owner.evaluate(WHO_AM_I) == str(booked.owner.id)
    await assert_remote_video_plays(owner)


ALL_CLOSED = "() => window.__peerConnections.every((pc) => pc.connectionState === 'closed')"


async def test_another_page_ends_the_call_camera_and_connections(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    booked = await named_booking(book_pet, pool)
    owner, vet = await admitted_call(browser, servers, booked)
    await assert_remote_video_plays(vet)
    hub = servers.hub[SOCKET_SERVER]
    assert sockets_of(hub, "pawhub-e2e/owner")

    await owner.get_by_role("link", name="pawhub").click()  # home, without Leave
    await expect(owner.get_by_role("link", name="Join consult")).to_be_visible()
    await owner.wait_for_function(ALL_CLOSED)
    # The hub tells the vet once it has the owner's leave: seconds on a loaded machine.
    await expect(vet.locator("video[aria-label='Remote video']")).to_have_count(0, timeout=15_000)
    for _ in range(50):
        if not sockets_of(hub, "pawhub-e2e/owner"):
            break
        await owner.wait_for_timeout(100)
    assert sockets_of(hub, "pawhub-e2e/owner") == []
