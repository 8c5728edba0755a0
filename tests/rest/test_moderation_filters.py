"""GET /v1/moderation/flags' filters and orders over a real port: by label and time, newest or
most severe first, paged by offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import httpx

from domain.chat.conversations import create_conversation
from domain.chat.messages import store_message
from domain.chat.moderation import raise_model_flag
from domain.identity import Role
from domain.identity.tokens import Principal
from tests.rest.conftest import MakeUser, bearer


async def test_flags_filter_by_label_and_time_and_sort_by_severity(
    http: httpx.AsyncClient, pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    owner, _ = await make_user(Role.owner)
    vet, _ = await make_user(Role.vet)
    _, token = await make_user(Role.moderator)
    async with pool.acquire() as conn:
        room = (await create_conversation(conn, owner.id, [vet.id], None)).id
    sender = Principal(user_id=owner.id, name=owner.name, role=owner.role)
    scored = [{"insult": 0.6}, {"threat": 0.95}, {"insult": 0.8, "threat": 0.5}, {"pii": 0.7}]
    ids: list[UUID] = []
    for labels in scored:
        message, _ = await store_message(pool, room, sender, uuid4().hex, "rude")
        flag = await raise_model_flag(pool, room, message.id, labels, "r", "vet-linear", "1")
        assert flag is not None
        ids.append(flag.id)
    # The first flag was raised two hours ago.
    await pool.execute(
        "UPDATE flags SET created_at = now() - interval '2 hours' WHERE id = $1", ids[0]
    )

    async def listed(**params: str | int) -> list[UUID]:
        response = await http.get(
            "/v1/moderation/flags", params={"room": str(room), **params}, headers=bearer(token)
        )
        assert response.status_code == 200, response.text
        return [UUID(flag["id"]) for flag in response.json()["flags"]]

    assert await listed() == [ids[3], ids[2], ids[1], ids[0]]
    assert await listed(sort="severity") == [ids[1], ids[2], ids[3], ids[0]]
    assert await listed(label="insult") == [ids[2], ids[0]]
    assert await listed(label="threat", sort="severity") == [ids[1], ids[2]]
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert await listed(since=hour_ago) == [ids[3], ids[2], ids[1]]
    assert await listed(label="nothing-scores-this") == []

    first = (
        await http.get(
            "/v1/moderation/flags",
            params={"room": str(room), "sort": "severity", "limit": 3},
            headers=bearer(token),
        )
    ).json()
    assert first["has_more"] is True and first["next_offset"] == 3
    assert first["next_before"] is None  # `before` pages newest first only
    assert await listed(sort="severity", offset=3) == [ids[0]]

    bad = await http.get("/v1/moderation/flags", params={"sort": "loudest"}, headers=bearer(token))
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    nul = await http.get("/v1/moderation/flags", params={"label": "a\x00b"}, headers=bearer(token))
    assert nul.status_code == 400
