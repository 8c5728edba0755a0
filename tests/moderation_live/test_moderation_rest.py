"""GET /v1/moderation/flags and /stats over a real port."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import httpx

from domain.chat.actions import ModeratorAction, act_on_flag
from domain.chat.messages import store_message
from domain.chat.moderation import raise_model_flag
from domain.identity import Role
from domain.identity.tokens import Principal


async def test_moderators_page_through_flags_and_see_stats(
    api_url: str, room: Any, pool: asyncpg.Pool, make_user: Any
) -> None:
    room_id, owner, _ = room
    sender = Principal(user_id=owner[0].id, name=owner[0].name, role=owner[0].role)
    mod_user, mod_token = await make_user(Role.moderator)
    moderator = Principal(user_id=mod_user.id, name=mod_user.name, role=mod_user.role)
    flag_ids = []
    for i in range(5):
        message, _ = await store_message(pool, room_id, sender, f"f{i}", f"rude {i}")
        flag = await raise_model_flag(
            pool, room_id, message.id, {"insult": 0.9}, "insult 0.90", "vet-profanity", "1"
        )
        assert flag is not None
        flag_ids.append(str(flag.id))
    first_flag = flag_ids[0]
    await act_on_flag(pool, UUID(first_flag), moderator, ModeratorAction.dismiss, "fine", None)

    headers = {"Authorization": f"Bearer {mod_token}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers) as http:
        first = (
            await http.get("/v1/moderation/flags", params={"room": str(room_id), "limit": 3})
        ).json()
        assert [f["id"] for f in first["flags"]] == flag_ids[::-1][:3]
        assert first["has_more"] is True
        rest = (
            await http.get(
                "/v1/moderation/flags",
                params={"room": str(room_id), "limit": 3, "before": first["next_before"]},
            )
        ).json()
        assert [f["id"] for f in rest["flags"]] == flag_ids[::-1][3:]
        assert rest["has_more"] is False
        dismissed = (
            await http.get(
                "/v1/moderation/flags", params={"room": str(room_id), "status": "dismissed"}
            )
        ).json()
        assert [f["id"] for f in dismissed["flags"]] == [flag_ids[0]]
        stats = (await http.get("/v1/moderation/stats")).json()
        assert stats["by_status"]["dismissed"] >= 1 and stats["actions"]["dismiss"] >= 1
        assert stats["by_model"]["vet-profanity"] >= 5
        bad = await http.get("/v1/moderation/flags", params={"status": "burnt"})
        assert bad.status_code == 400
        assert bad.headers["content-type"].startswith("application/problem+json")

    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {owner[1]}"}
    ) as http:
        refused = await http.get("/v1/moderation/flags")
        assert refused.status_code == 403
