"""The moderator dashboard in a real browser (Debian's chromium through Playwright) against the
real hub, API, PostgreSQL and Redis: two moderators see each other's claim live, the second
takes the flag over after confirming, and a flag's sender history lists the sender's earlier
flags and what was done about them; axe-core at 360 px and 1280 px."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from domain.chat.actions import ModeratorAction, act_on_flag
from domain.chat.messages import store_message
from domain.chat.moderation import raise_model_flag
from domain.identity import Role, User
from domain.identity.tokens import Principal
from tests.e2e.browser import (
    Servers,
    at_each_width,
    new_person,
    sign_in,
)

pytestmark = pytest.mark.slow


def principal(user: User) -> Principal:
    return Principal(user_id=user.id, name=user.name, role=user.role)


async def flag_message(pool: asyncpg.Pool, room: UUID, sender: User, body: str) -> UUID:
    message, _ = await store_message(pool, room, principal(sender), uuid4().hex, body)
    flag = await raise_model_flag(
        pool, room, message.id, {"insult": 0.92}, "insult 0.92", "vet-linear", "1"
    )
    assert flag is not None
    return flag.id


async def open_dashboard(browser: Browser, servers: Servers, name: str, user: User) -> Page:
    _, page = await new_person(browser, name)
    await sign_in(page, servers.hub_url, "/app/moderation", user.email)
    await expect(page.get_by_role("list", name="Flags")).to_be_visible()
    return page


def flag_item(page: Page, body: str) -> Locator:
    return page.get_by_role("list", name="Flags").get_by_role("listitem").filter(has_text=body)


async def test_two_moderators_see_each_others_claim_live_and_the_second_takes_over(
    browser: Browser, servers: Servers, room: Any, pool: asyncpg.Pool, make_user: Any
) -> None:
    room_id, (sender, _), _ = room
    mona, _ = await make_user(Role.moderator, "Mona Moderator")
    bert, _ = await make_user(Role.moderator, "Bert Moderator")
    earlier = await flag_message(pool, room_id, sender, "an earlier insult from this owner")
    await act_on_flag(
        pool, earlier, principal(mona), ModeratorAction.dismiss, "first warning", None
    )
    body = f"you useless quack {uuid4().hex[:6]}"
    flag_id = await flag_message(pool, room_id, sender, body)

    mona_page = await open_dashboard(browser, servers, "mona", mona)
    bert_page = await open_dashboard(browser, servers, "bert", bert)
    monas, berts = flag_item(mona_page, body), flag_item(bert_page, body)
    await expect(berts).to_be_visible()

    # Mona claims the flag: Bert's dashboard shows it at once; releasing shows that too.
    await monas.get_by_role("button", name="Claim", exact=True).click()
    await expect(monas).to_contain_text("Claimed by you")
    await expect(berts).to_contain_text("Claimed by Mona Moderator")
    await monas.get_by_role("button", name="Release").click()
    await expect(berts).not_to_contain_text("Claimed by")
    await monas.get_by_role("button", name="Claim", exact=True).click()
    await expect(berts).to_contain_text("Claimed by Mona Moderator")
    assert await at_each_width(mona_page, "moderation-claimed") == []

    # Bert reads the sender's history before deciding.
    await berts.get_by_text("Sender history").click()
    history = berts.get_by_role("list", name="Sender history")
    await expect(history).to_contain_text("an earlier insult from this owner")
    await expect(history).to_contain_text("Mona Moderator dismissed the flag")
    await expect(history).to_contain_text("first warning")
    await expect(history).not_to_contain_text(body)  # earlier flags only

    # Acting on Mona's claim asks Bert to confirm taking it over; nothing is done before.
    await bert_page.get_by_label("Reason").fill("keeps insulting staff")
    await berts.get_by_role("button", name="Dismiss").click()
    await expect(berts.get_by_role("alert")).to_contain_text("Mona Moderator has claimed this flag")
    take_over = berts.get_by_role("button", name="Take over")
    await expect(take_over).to_be_focused()
    assert await pool.fetchval("SELECT status FROM flags WHERE id = $1", flag_id) == "open"
    assert await at_each_width(bert_page, "moderation-take-over") == []

    await bert_page.keyboard.press("Enter")  # the focused Take over button
    await expect(berts).to_have_count(0)  # dismissed: it left Bert's queue
    await expect(monas).to_have_count(0)  # and Mona's, live
    await expect(mona_page.get_by_text("which you had claimed")).to_be_visible()
    await bert_page.get_by_label("Status").select_option(label="Dismissed")
    trail = berts.get_by_role("list", name="Audit trail")
    await expect(trail).to_contain_text(
        "Bert Moderator dismissed the flag (taking it over from Mona Moderator)"
    )
    await expect(berts).not_to_contain_text("Claimed by")

    action = await pool.fetchrow(
        "SELECT actor_id, action, reason, took_over_from FROM moderation_actions"
        " WHERE flag_id = $1",
        flag_id,
    )
    assert action is not None
    assert tuple(action) == (bert.id, "dismiss", "keeps insulting staff", mona.id)
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE actor_id = $1 AND target_id = $2"
        " AND action = 'moderation.take_over'",
        bert.id,
        flag_id,
    )
    assert audited == 1
