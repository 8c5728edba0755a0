"""The consult page in `sfu` mode when Janus serves it (JANUS_URL, a real Janus on
deploy/janus), in a real browser (Debian's chromium through Playwright): the page opens a
publish and a subscribe connection (the join ack's `sfu_connections: 2`), each of an owner and
a vet decodes the other's video in a tile named after them, and after the owner's page
reconnects, the vet's tile plays the owner's new feed (Janus reuses the vet's subscription's
m-line for it, with a new SSRC, which the browser follows)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from playwright.async_api import Browser, Page

from domain.scheduling.consults import invite
from pawhub.settings import Settings
from realtime.server import SOCKET_SERVER
from tests.conftest import BookPet
from tests.e2e.browser import Servers, serve_pages
from tests.e2e.test_pages import CALL_STATE, admitted_call, drop_sockets_of, named_booking
from tests.e2e.test_pages_sfu import OPEN_CONNECTIONS, TILE_FRAMES, shows_tile_of, tile_frames
from tests.janus_process import Janus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def servers(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Servers]:
    janus = Janus(tmp_path_factory.mktemp("janus-pages") / "janus")
    await janus.start()
    own = settings.model_copy(
        update={"redis_namespace": f"{settings.redis_namespace}-janus", "janus_url": janus.url}
    )
    try:
        async for running in serve_pages(own):
            yield running
    finally:
        await janus.kill()


async def subscription(page: Page, publisher_id: str, after: int = 0) -> int:
    """The index of the page's open subscribe connection (opened after the first `after`) on
    which Janus sends `publisher_id`'s tracks, beside one publish connection."""
    await page.wait_for_function(
        f"""() => {{
          const open = ({OPEN_CONNECTIONS})().filter((c) => c.index >= {after});
          return open.length === 2 && open.some((c) => c.streams.includes("{publisher_id}"));
        }}""",
        timeout=30_000,
    )
    publish, subscribe = sorted(await page.evaluate(OPEN_CONNECTIONS), key=lambda c: c["index"])
    assert publish["streams"] == [], publish  # the publish connection receives nothing
    assert set(subscribe["streams"]) == {publisher_id}, await page.evaluate(CALL_STATE)
    return int(subscribe["index"])


async def plays(page: Page, index: int) -> None:
    """The remote tile's track decodes frames on connection `index`, and keeps decoding."""
    await page.wait_for_function(
        f"({TILE_FRAMES})({index}).then(([track, frames]) => frames > 0)", timeout=30_000
    )
    before = await tile_frames(page, index)
    await page.wait_for_timeout(1500)
    track, frames = await tile_frames(page, index)
    assert track == before[0] and frames > before[1], "the remote video froze"


async def test_owner_and_vet_see_each_other_through_janus_and_after_a_reconnect(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool, make_user: Any
) -> None:
    booked = await named_booking(book_pet, pool)
    consult = booked.booking.consult_id
    assert isinstance(consult, UUID)
    guest, _ = await make_user()
    async with pool.acquire() as conn:
        await invite(conn, booked.owner.id, consult, guest.id)  # three people: sfu mode
    owner, vet = await admitted_call(browser, servers, booked)

    owner_sub = await subscription(owner, str(booked.vet.id))
    vet_sub = await subscription(vet, str(booked.owner.id))
    await plays(owner, owner_sub)
    await plays(vet, vet_sub)
    await shows_tile_of(owner, "Vera Vet")
    await shows_tile_of(vet, "Olive Owner")

    # The owner's page reconnects and opens both connections anew; the vet keeps its own.
    before, _ = await tile_frames(vet, vet_sub)
    assert await drop_sockets_of(servers.hub[SOCKET_SERVER], "pawhub-e2e/owner") > 0
    await subscription(owner, str(booked.vet.id), owner_sub + 1)
    await vet.wait_for_function(
        f"({TILE_FRAMES})({vet_sub}).then(([track, frames]) => track !== {before!r} && frames > 0)",
        timeout=30_000,
    )
    await plays(vet, vet_sub)
    await shows_tile_of(vet, "Olive Owner")
