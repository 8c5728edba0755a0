"""The consult page's chat panel in a real browser: earlier messages a page at a time, the
typing indicator, read receipts, the unread count while the page is hidden, and Report."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from domain.chat.messages import store_message
from domain.identity.tokens import Principal
from tests.conftest import BookPet
from tests.e2e.browser import Servers
from tests.e2e.test_pages import chat_log, named_booking, open_consult, send

pytestmark = pytest.mark.slow

CHAT_PAGE = 50  # messages a history page holds (web/js/chat.js PAGE)

# Lets a test hide the page as a background tab would be (headless pages are always visible).
HIDEABLE = """
(() => {
  window.__hidden = false;
  Object.defineProperty(document, "hidden", { get: () => window.__hidden });
})();
"""


SET_HIDDEN = """
(hidden) => {
  window.__hidden = hidden;
  document.dispatchEvent(new Event("visibilitychange"));
}
"""


async def set_hidden(page: Page, hidden: bool) -> None:
    await page.evaluate(SET_HIDDEN, hidden)


async def test_the_chat_panel_pages_back_and_shows_typing_receipts_unread_and_reports(
    browser: Browser, servers: Servers, book_pet: BookPet, pool: asyncpg.Pool
) -> None:
    booked = await named_booking(book_pet, pool)
    room = await pool.fetchval("SELECT room FROM consults WHERE booking_id = $1", booked.booking.id)
    vet_sender = Principal(user_id=booked.vet.id, name="Vera Vet", role=booked.vet.role)
    for n in range(CHAT_PAGE + 5):
        await store_message(pool, room, vet_sender, f"seed-{n}", f"earlier note {n}")

    owner = await open_consult(browser, servers, "owner", booked.owner.email, HIDEABLE)
    await expect(owner.get_by_text("Waiting for Dr Vera Vet")).to_be_visible()
    log = chat_log(owner)
    await expect(log).to_contain_text(f"earlier note {CHAT_PAGE + 4}")
    first_page = await log.locator("li .body").all_inner_texts()
    assert first_page == [f"earlier note {n}" for n in range(5, CHAT_PAGE + 5)]
    await owner.get_by_role("button", name="Load earlier messages").click()
    await expect(log).to_contain_text("earlier note 0")
    bodies = await log.locator("li .body").all_inner_texts()
    assert bodies == [f"earlier note {n}" for n in range(CHAT_PAGE + 5)]  # in order, once each
    await expect(owner.get_by_role("button", name="Load earlier messages")).to_be_hidden()

    vet = await open_consult(browser, servers, "vet", booked.vet.email)
    await vet.get_by_label("Message").press_sequentially("Rex looks")
    await expect(owner.get_by_text("Vera Vet is typing…")).to_be_visible()
    await vet.get_by_label("Message").fill("")
    await expect(owner.get_by_text("Vera Vet is typing…")).to_be_hidden(timeout=10_000)

    await send(owner, "Is the swelling normal?")
    await expect(chat_log(vet)).to_contain_text("Is the swelling normal?")
    mine = log.locator("li.mine").filter(has_text="Is the swelling normal?")
    await expect(mine.locator(".seen")).to_have_text("Seen")  # the vet's page read it

    await set_hidden(owner, True)
    await send(vet, "It can be, for a day or two")
    await expect(owner.get_by_role("heading", name="Chat (1 unread)")).to_be_visible()
    await set_hidden(owner, False)
    await expect(owner.get_by_role("heading", name="Chat", exact=True)).to_be_visible()

    reported = log.locator("li.theirs").filter(has_text="earlier note 7")
    await reported.get_by_role("button", name="Report").click()
    await expect(owner.get_by_text("A moderator will review the message.")).to_be_visible()
    reports = await pool.fetchval(
        """SELECT count(*) FROM flags f JOIN messages m ON m.id = f.message_id
            WHERE m.room = $1 AND m.body = 'earlier note 7' AND f.source = 'report'""",
        room,
    )
    assert reports == 1
