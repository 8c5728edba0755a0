"""The consult page's chat panel in a real browser: earlier messages a page at a time, the
typing indicator, read receipts, the unread count while the page is hidden, Report, and a
send answered `unavailable` tried again (and given up after five tries)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from domain.chat.messages import Message, NewMessage, store_message
from domain.errors import Unavailable
from domain.identity.tokens import Principal
from realtime.server import SOCKET_SERVER
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
    # Typing counts once the vet's chat has joined the room (its history shows).
    await expect(chat_log(vet)).to_contain_text(f"earlier note {CHAT_PAGE + 4}")
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


class FlakyStore:
    """The hub's message store answering `unavailable` (a database restarting) to the first
    `failures` sends of each body that names itself "flaky", every one if `failures` is None."""

    def __init__(self, store: Any, failures: int | None) -> None:
        self._store = store
        self._failures = failures
        self.refused: Counter[str] = Counter()

    async def store(self, message: NewMessage) -> tuple[Message, bool]:
        if "flaky" in message.body and (
            self._failures is None or self.refused[message.body] < self._failures
        ):
            self.refused[message.body] += 1
            raise Unavailable("the database is restarting; try again shortly")
        result: tuple[Message, bool] = await self._store.store(message)
        return result


def flaky_store(servers: Servers, monkeypatch: pytest.MonkeyPatch, failures: int | None) -> Any:
    chat = servers.hub[SOCKET_SERVER].namespace_handlers["/chat"]
    flaky = FlakyStore(chat._store, failures)
    monkeypatch.setattr(chat, "_store", flaky)
    return flaky


async def test_a_send_answered_unavailable_is_tried_again_and_given_up_after_five(
    browser: Browser,
    servers: Servers,
    book_pet: BookPet,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    booked = await named_booking(book_pet, pool)
    owner = await open_consult(browser, servers, "owner", booked.owner.email)
    vet = await open_consult(browser, servers, "vet", booked.vet.email)
    flaky = flaky_store(servers, monkeypatch, failures=2)
    await send(owner, "a flaky hello")  # refused twice, then stored: once, in order
    await expect(chat_log(vet)).to_contain_text("a flaky hello")
    await send(owner, "and then")
    await expect(chat_log(vet)).to_contain_text("and then")
    assert await chat_log(owner).locator("li .body").all_inner_texts() == [
        "a flaky hello",
        "and then",
    ]
    assert flaky.refused["a flaky hello"] == 2
    assert not await owner.get_by_role("alert").is_visible()

    down = flaky_store(servers, monkeypatch, failures=None)
    await send(owner, "flaky for good")
    await expect(owner.get_by_role("alert")).to_contain_text(
        "Your message was not sent: The database is restarting; try again shortly.", timeout=30_000
    )
    assert down.refused["flaky for good"] == 6  # the send and five tries again
    await expect(owner.get_by_label("Message")).to_have_value("flaky for good")
    room = await pool.fetchval("SELECT room FROM consults WHERE booking_id = $1", booked.booking.id)
    stored = await pool.fetch("SELECT body FROM messages WHERE room = $1 ORDER BY seq", room)
    assert [row["body"] for row in stored] == ["a flaky hello", "and then"]
