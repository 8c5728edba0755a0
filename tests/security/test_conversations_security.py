"""Conversations against the real API and hub: a member leaves (and /chat then refuses them),
the room outlives its last member, and creating rooms is limited per user."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from uuid import UUID, uuid4

import asyncpg
import httpx

from domain.chat.conversations import MEMBER_LEFT
from domain.identity import Role, User
from pawhub.settings import Settings
from tests.conftest import serve_api
from tests.recording_client import ChatClient
from tests.rest.conftest import MakeUser, bearer
from tests.security.problems import assert_problem

Connect = Callable[..., Awaitable[ChatClient]]


async def create_room(http: httpx.AsyncClient, token: str, *members: User) -> httpx.Response:
    return await http.post(
        "/v1/conversations",
        json={"member_ids": [str(member.id) for member in members], "title": "Rex"},
        headers=bearer(token),
    )


async def test_a_member_leaves_and_chat_refuses_them(
    api_url: str, make_user: MakeUser, connect: Connect, pool: asyncpg.Pool
) -> None:
    (owner, owner_token), (vet, vet_token) = await make_user(Role.owner), await make_user(Role.vet)
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        room = (await create_room(http, owner_token, vet)).json()
        room_id = room["id"]
        alice = await connect(owner_token)
        sent = await alice.call("send", {"room": room_id, "client_id": "a", "body": "hello"})
        assert sent["ok"], sent

        left = await http.post(f"/v1/conversations/{room_id}/leave", headers=bearer(vet_token))
        assert left.status_code == 204 and left.content == b""

        mine = (await http.get("/v1/conversations", headers=bearer(vet_token))).json()
        assert room_id not in [conversation["id"] for conversation in mine]
        assert_problem(
            await http.get(f"/v1/conversations/{room_id}", headers=bearer(vet_token)), 404
        )
        seen_by_owner = await http.get(f"/v1/conversations/{room_id}", headers=bearer(owner_token))
        assert seen_by_owner.json()["member_ids"] == [str(owner.id)]
        again = await http.post(f"/v1/conversations/{room_id}/leave", headers=bearer(vet_token))
        assert_problem(again, 404)

        bob = await connect(vet_token)
        for event, payload in [
            ("join", {"room": room_id}),
            ("send", {"room": room_id, "client_id": "b", "body": "still here?"}),
            ("history", {"room": room_id}),
        ]:
            refused = await bob.call(event, payload)
            assert refused["ok"] is False and refused["error"]["code"] == "forbidden", event

        # The hub learns of the leave through the outbox (to take live sockets out).
        event = await pool.fetchval(
            "SELECT payload::text FROM outbox WHERE topic = $1 AND payload->>'user_id' = $2",
            MEMBER_LEFT,
            str(vet.id),
        )
        assert json.loads(event) == {"conversation_id": room_id, "user_id": str(vet.id)}

        # The last member leaves: the room and its messages stay.
        out = await http.post(f"/v1/conversations/{room_id}/leave", headers=bearer(owner_token))
        assert out.status_code == 204
        assert await pool.fetchval("SELECT count(*) FROM messages WHERE room = $1", UUID(room_id))
        assert await pool.fetchval("SELECT 1 FROM conversations WHERE id = $1", UUID(room_id))


async def test_leaving_an_unknown_or_foreign_room_is_404(api_url: str, make_user: MakeUser) -> None:
    (_, owner_token), (_, stranger_token) = await make_user(), await make_user()
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        room_id = (await create_room(http, owner_token)).json()["id"]
        for token, target in [(stranger_token, room_id), (owner_token, str(uuid4()))]:
            refused = await http.post(f"/v1/conversations/{target}/leave", headers=bearer(token))
            assert_problem(refused, 404)
        assert_problem(await http.post(f"/v1/conversations/{room_id}/leave"), 401)


async def test_creating_conversations_is_limited_per_user(
    settings: Settings, make_user: MakeUser
) -> None:
    (_, busy_token), (_, other_token) = await make_user(), await make_user()
    tight = settings.model_copy(update={"conversation_limit_per_hour": 3})
    async with serve_api(tight) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(3):
            assert (await create_room(http, busy_token)).status_code == 201
        refused = assert_problem(await create_room(http, busy_token), 429)
        assert "too many conversations" in refused["detail"]
        assert 3500 <= int((await create_room(http, busy_token)).headers["retry-after"]) <= 3601
        assert (await create_room(http, other_token)).status_code == 201


async def test_a_socket_joined_before_a_leave_is_taken_out_of_the_room(
    api_url: str, hub_url: str, make_user: MakeUser, connect: Connect
) -> None:
    """The leave reaches the hub through the outbox: the vet's live socket gets `removed`,
    receives nothing more from the room, and every /chat event for it is then refused."""
    (_, owner_token), (vet, vet_token) = await make_user(Role.owner), await make_user(Role.vet)
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        room_id = (await create_room(http, owner_token, vet)).json()["id"]
        alice, bob = await connect(owner_token, hub_url), await connect(vet_token, hub_url)
        for client in (alice, bob):
            assert (await client.call("join", {"room": room_id}))["ok"]

        left = await http.post(f"/v1/conversations/{room_id}/leave", headers=bearer(vet_token))
        assert left.status_code == 204
        [removed] = await bob.wait_for("removed", 1, timeout=20)
        assert removed == {"room": room_id, "reason": "you left the conversation"}

        sent = await alice.call("send", {"room": room_id, "client_id": "after", "body": "still?"})
        assert sent["ok"], sent
        await alice.wait_for("message", 1)
        assert bob.received["message"] == []
        for event, payload in [
            ("history", {"room": room_id}),
            ("typing", {"room": room_id, "typing": True}),
        ]:
            refused = await bob.call(event, payload)
            assert refused["ok"] is False and refused["error"]["code"] == "forbidden", event
