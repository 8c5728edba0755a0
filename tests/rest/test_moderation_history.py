"""GET /v1/moderation/users/{user_id}/history over a real port: a sender's earlier flags and the
actions taken on each, newest first, bounded and paged; for moderators and admins only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple
from uuid import UUID, uuid4

import asyncpg
import httpx

from domain.chat.actions import ModeratorAction, act_on_flag
from domain.chat.claims import claim_flag
from domain.chat.conversations import create_conversation
from domain.chat.flags import report_message
from domain.chat.messages import store_message
from domain.chat.moderation import raise_model_flag
from domain.chat.sender_history import MAX_HISTORY_PAGE
from domain.identity import Role, User
from domain.identity.tokens import Principal
from tests.rest.conftest import MakeUser, bearer


def principal(user: User) -> Principal:
    return Principal(user_id=user.id, name=user.name, role=user.role)


async def flag_messages(
    pool: asyncpg.Pool, room: UUID, sender: User, bodies: list[str]
) -> list[UUID]:
    flag_ids = []
    for body in bodies:
        message, _ = await store_message(pool, room, principal(sender), uuid4().hex, body)
        flag = await raise_model_flag(
            pool, room, message.id, {"insult": 0.8}, "insult 0.80", "vet-linear", "1"
        )
        assert flag is not None
        flag_ids.append(flag.id)
    return flag_ids


class Cast(NamedTuple):
    """A sender and a vet in one room, and two moderators (Mona signed in)."""

    sender: User
    vet: User
    mona: User
    mona_token: str
    bert: User
    room: UUID


async def cast_of_a_moderated_room(pool: asyncpg.Pool, make_user: MakeUser) -> Cast:
    sender, _ = await make_user(Role.owner, "Sid Sender")
    vet, _ = await make_user(Role.vet, "Dr. Vera Vet")
    mona, mona_token = await make_user(Role.moderator, "Mona Moderator")
    bert, _ = await make_user(Role.moderator, "Bert Moderator")
    async with pool.acquire() as conn:
        room = (await create_conversation(conn, sender.id, [vet.id], "Rex")).id
    return Cast(sender, vet, mona, mona_token, bert, room)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


async def test_a_senders_history_lists_their_flags_and_what_was_done_newest_first(
    http: httpx.AsyncClient, pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    sender, vet, mona, mona_token, bert, room = await cast_of_a_moderated_room(pool, make_user)
    first, second, third = await flag_messages(pool, room, sender, ["rude 1", "rude 2", "rude 3"])
    report_by_vet, _ = await store_message(pool, room, principal(vet), "v", "not the sender's")
    await report_message(pool, room, report_by_vet.id, vet.id, "rude vet")

    await act_on_flag(pool, first, principal(mona), ModeratorAction.dismiss, "fine", None)
    await act_on_flag(
        pool, second, principal(mona), ModeratorAction.mute, "again", timedelta(minutes=15)
    )
    await act_on_flag(pool, second, principal(mona), ModeratorAction.ban, "third time", None)
    await claim_flag(pool, third, principal(mona))
    await act_on_flag(
        pool, third, principal(bert), ModeratorAction.escalate, "a vet should see", None,
        take_over=True,
    )  # fmt: skip

    response = await http.get(
        f"/v1/moderation/users/{sender.id}/history", headers=bearer(mona_token)
    )
    assert response.status_code == 200, response.text
    history = response.json()
    assert history["user"] == {"id": str(sender.id), "name": "Sid Sender"}
    assert history["role"] == "owner"
    assert [f["id"] for f in history["flags"]] == [str(third), str(second), str(first)]
    assert [f["body"] for f in history["flags"]] == ["rude 3", "rude 2", "rude 1"]
    assert [f["status"] for f in history["flags"]] == ["escalated", "actioned", "dismissed"]
    latest, banned, dismissed = history["flags"]
    [escalation] = latest["actions"]
    assert escalation["actor"] == {"id": str(bert.id), "name": "Bert Moderator"}
    assert escalation["took_over_from"] == {"id": str(mona.id), "name": "Mona Moderator"}
    assert [(a["action"], a["reason"], a["duration_s"]) for a in banned["actions"]] == [
        ("ban", "third time", None),
        ("mute", "again", 900),
    ]
    assert dismissed["actions"][0]["took_over_from"] is None
    assert history["has_more"] is False and history["next_before"] is None

    earlier = await http.get(
        f"/v1/moderation/users/{sender.id}/history",
        params={"before": latest["ts"]},
        headers=bearer(mona_token),
    )
    assert [f["id"] for f in earlier.json()["flags"]] == [str(second), str(first)]
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE actor_id = $1 AND target_id = $2"
        " AND action = 'moderation.history_read'",
        mona.id,
        sender.id,
    )
    assert audited == 2


async def test_history_is_paged_and_bounded(
    http: httpx.AsyncClient, pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    sender, _ = await make_user(Role.owner)
    vet, _ = await make_user(Role.vet)
    _, admin_token = await make_user(Role.admin)
    async with pool.acquire() as conn:
        room = (await create_conversation(conn, sender.id, [vet.id], None)).id
    flag_ids = await flag_messages(pool, room, sender, [f"rude {n}" for n in range(5)])
    path = f"/v1/moderation/users/{sender.id}/history"

    page = (await http.get(path, params={"limit": 3}, headers=bearer(admin_token))).json()
    assert [f["id"] for f in page["flags"]] == [str(i) for i in flag_ids[::-1][:3]]
    assert page["has_more"] is True
    rest = (
        await http.get(
            path, params={"limit": 3, "before": page["next_before"]}, headers=bearer(admin_token)
        )
    ).json()
    assert [f["id"] for f in rest["flags"]] == [str(i) for i in flag_ids[::-1][3:]]
    assert rest["has_more"] is False

    too_many = await http.get(
        path, params={"limit": MAX_HISTORY_PAGE + 1}, headers=bearer(admin_token)
    )
    problem(too_many, 400)
    problem(await http.get(path, params={"before": "yesterday"}, headers=bearer(admin_token)), 400)


async def test_history_is_for_moderators_and_admins_only(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    sender, sender_token = await make_user(Role.owner)
    _, vet_token = await make_user(Role.vet)
    _, mod_token = await make_user(Role.moderator)
    path = f"/v1/moderation/users/{sender.id}/history"

    problem(await http.get(path), 401)
    problem(await http.get(path, headers=bearer("forged.token.value")), 401)
    for token in (sender_token, vet_token):
        problem(await http.get(path, headers=bearer(token)), 403)
    unknown = await http.get(f"/v1/moderation/users/{uuid4()}/history", headers=bearer(mod_token))
    assert "no such user" in problem(unknown, 404)["detail"]
    problem(await http.get("/v1/moderation/users/nobody/history", headers=bearer(mod_token)), 404)
