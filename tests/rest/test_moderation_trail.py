"""GET /v1/moderation/flags/{flag_id}/trail over a real port: who raised a flag, then who did
what to it, when and why (take-overs of another's claim included), oldest first; for
moderators and admins only, each read audited."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import asyncpg
import httpx

from domain.chat.actions import ModeratorAction, act_on_flag
from domain.chat.claims import claim_flag
from domain.chat.flags import report_message
from domain.chat.messages import store_message
from domain.identity import Role
from tests.rest.conftest import MakeUser, bearer
from tests.rest.test_moderation_history import (
    cast_of_a_moderated_room,
    flag_messages,
    principal,
    problem,
)


async def test_a_flags_trail_names_who_did_what_when_and_why_oldest_first(
    http: httpx.AsyncClient, pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    sender, vet, mona, mona_token, bert, room = await cast_of_a_moderated_room(pool, make_user)
    [modelled] = await flag_messages(pool, room, sender, ["you useless quack"])
    reported, _ = await store_message(pool, room, principal(sender), "r", "see you outside")
    await claim_flag(pool, modelled, principal(mona))
    await act_on_flag(
        pool, modelled, principal(bert), ModeratorAction.mute, "second warning",
        timedelta(minutes=15), take_over=True,
    )  # fmt: skip
    await act_on_flag(pool, modelled, principal(mona), ModeratorAction.ban, "kept at it", None)

    response = await http.get(f"/v1/moderation/flags/{modelled}/trail", headers=bearer(mona_token))
    assert response.status_code == 200, response.text
    trail = response.json()
    assert trail["flag_id"] == str(modelled) and trail["truncated"] is False
    steps = [
        (
            entry["what"],
            entry["by"] and entry["by"]["name"],
            entry["reason"],
            entry["duration_s"],
            entry["took_over_from"] and entry["took_over_from"]["name"],
        )
        for entry in trail["entries"]
    ]
    assert steps == [
        ("raised", None, "insult 0.80 (model vet-linear)", None, None),
        ("moderation.take_over", "Bert Moderator", None, None, "Mona Moderator"),
        ("moderation.mute", "Bert Moderator", "second warning", 900, "Mona Moderator"),
        ("moderation.ban", "Mona Moderator", "kept at it", None, None),
    ]
    times = [entry["at"] for entry in trail["entries"]]
    assert times == sorted(times)
    read = await pool.fetchval(
        """SELECT count(*) FROM audit_log WHERE actor_id = $1 AND action = 'moderation.trail_read'
              AND target_type = 'flag_trail' AND target_id = $2""",
        mona.id,
        modelled,
    )
    assert read == 1

    # A reported flag names its reporter.
    flag = await report_message(pool, room, reported.id, vet.id, "sounds like a threat")
    first = (
        await http.get(f"/v1/moderation/flags/{flag.id}/trail", headers=bearer(mona_token))
    ).json()["entries"][0]
    assert (first["what"], first["by"]["name"], first["reason"]) == (
        "raised",
        "Dr. Vera Vet",
        "sounds like a threat",
    )


async def test_a_flags_trail_is_for_moderators_and_admins_only(
    http: httpx.AsyncClient, make_user: MakeUser
) -> None:
    _, owner_token = await make_user(Role.owner)
    _, vet_token = await make_user(Role.vet)
    _, admin_token = await make_user(Role.admin)
    path = f"/v1/moderation/flags/{uuid4()}/trail"

    problem(await http.get(path), 401)
    for token in (owner_token, vet_token):
        problem(await http.get(path, headers=bearer(token)), 403)
    assert (
        "no such flag" in problem(await http.get(path, headers=bearer(admin_token)), 404)["detail"]
    )
    problem(await http.get("/v1/moderation/flags/nope/trail", headers=bearer(admin_token)), 404)
