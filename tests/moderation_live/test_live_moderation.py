"""Live moderation end to end: /chat -> stream -> scoring worker -> flag -> /moderation -> act."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import pytest
import socketio

from domain.identity import Role
from tests.recording_client import ChatClient, ModeratorClient

pytestmark = pytest.mark.usefixtures("scoring_worker")


@pytest.fixture
async def moderator(chat_url: str, make_user: Any) -> Any:
    user, token = await make_user(Role.moderator, "Mo Derator")
    client = await ModeratorClient.connect(chat_url, token)
    assert (await client.call("subscribe", {}))["ok"]
    yield user, client
    await client.close()


async def send_abuse(owner_client: ChatClient, room_id: UUID, client_id: str) -> dict[str, Any]:
    ack = await owner_client.call(
        "send",
        {"room": str(room_id), "client_id": client_id, "body": "f4ck you, you useless quack"},
    )
    assert ack["ok"]
    message: dict[str, Any] = ack["message"]
    return message


async def test_a_toxic_message_reaches_moderators_who_delete_it_for_everyone(
    room: Any, connect: Any, moderator: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, vet = room
    mod_user, mod = moderator
    alice, bob = await connect(owner[1]), await connect(vet[1])
    for client in (alice, bob):
        await client.call("join", {"room": str(room_id)})
    clinical = await alice.call(
        "send",
        {
            "room": str(room_id),
            "client_id": "ok",
            "body": "should we spay the bitch before her next heat?",
        },
    )
    message = await send_abuse(alice, room_id, "bad")

    flag = await mod.wait_until("flag", lambda f: f["message"]["id"] == message["id"])
    assert flag["status"] == "open" and flag["source"] == "model"
    assert flag["room"] == str(room_id) and flag["model"] == "vet-linear"
    assert flag["labels"] and all(0 <= score <= 1 for score in flag["labels"].values())
    assert flag["message"]["body"] == "f4ck you, you useless quack"

    watched = await mod.call("watch", {"room": str(room_id)})
    assert [m["id"] for m in watched["messages"]] == [clinical["message"]["id"], message["id"]]
    acted = await mod.call(
        "act", {"flag_id": flag["id"], "action": "delete", "reason": "abuse of staff"}
    )
    assert acted["ok"] and acted["flag"]["status"] == "actioned"
    assert acted["flag"]["message"]["deleted"] is True

    deleted = {"room": str(room_id), "id": message["id"], "seq": message["seq"]}
    assert (await bob.wait_for("message_deleted", 1)) == [deleted]
    assert await mod.wait_until("message_deleted", lambda e: e == deleted)
    updated = await mod.wait_until("flag_updated", lambda f: f["id"] == flag["id"])
    assert updated["status"] == "actioned"
    page = await bob.call("history", {"room": str(room_id)})
    assert [(m["seq"], m["deleted"], m["body"]) for m in page["messages"]] == [
        (1, False, "should we spay the bitch before her next heat?"),
        (2, True, ""),
    ]

    clinical_flags = await pool.fetchval(
        "SELECT count(*) FROM flags WHERE message_id = $1", UUID(clinical["message"]["id"])
    )
    assert clinical_flags == 0
    action = await pool.fetchrow(
        "SELECT actor_id, action, reason FROM moderation_actions WHERE flag_id = $1",
        UUID(flag["id"]),
    )
    assert action is not None
    assert (action["actor_id"], action["action"], action["reason"]) == (
        mod_user.id,
        "delete",
        "abuse of staff",
    )
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE actor_id = $1 AND action = 'moderation.delete'"
        " AND target_id = $2",
        mod_user.id,
        UUID(flag["id"]),
    )
    assert audited == 1


async def test_a_muted_user_cannot_send_and_a_banned_one_is_removed(
    room: Any, connect: Any, moderator: Any
) -> None:
    room_id, owner, vet = room
    _, mod = moderator
    alice, bob = await connect(owner[1]), await connect(vet[1])
    for client in (alice, bob):
        await client.call("join", {"room": str(room_id)})
    first = await send_abuse(alice, room_id, "m1")
    flag = await mod.wait_until("flag", lambda f: f["message"]["id"] == first["id"])

    muted = await mod.call("act", {"flag_id": flag["id"], "action": "mute", "duration_s": 600})
    assert muted["ok"]
    refused = await alice.call("send", {"room": str(room_id), "client_id": "m2", "body": "hi"})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    assert "muted" in refused["error"]["message"]
    assert (await bob.call("send", {"room": str(room_id), "client_id": "b", "body": "hi"}))["ok"]

    banned = await mod.call("act", {"flag_id": flag["id"], "action": "ban", "reason": "again"})
    assert banned["ok"]
    [removed] = await alice.wait_for("removed", 1)
    assert removed["room"] == str(room_id)
    again = await alice.call("join", {"room": str(room_id)})
    assert again["error"]["code"] == "forbidden"


async def test_members_report_messages_to_moderators(
    room: Any, connect: Any, moderator: Any
) -> None:
    room_id, owner, vet = room
    _, mod = moderator
    alice, bob = await connect(owner[1]), await connect(vet[1])
    await alice.call("join", {"room": str(room_id)})
    sent = await alice.call(
        "send",
        {"room": str(room_id), "client_id": "r", "body": "Pay me outside the app, it's cheaper"},
    )
    reported = await bob.call(
        "report",
        {"room": str(room_id), "id": sent["message"]["id"], "reason": "asks to pay off-platform"},
    )
    assert reported["ok"]
    flag = await mod.wait_until("flag", lambda f: f["id"] == reported["flag_id"])
    assert (flag["source"], flag["reason"], flag["status"]) == (
        "report",
        "asks to pay off-platform",
        "open",
    )
    assert flag["message"]["id"] == sent["message"]["id"]


async def test_moderation_is_for_moderators_and_only_rooms_with_a_flag_are_watched(
    chat_url: str, room: Any, moderator: Any, make_user: Any
) -> None:
    room_id, owner, _ = room
    _, mod = moderator
    errors: list[Any] = []
    client = socketio.AsyncClient(reconnection=False)
    client.on("connect_error", errors.append, namespace="/moderation")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            chat_url, auth={"token": owner[1]}, namespaces=["/moderation"], transports=["websocket"]
        )
    assert errors == [{"message": "forbidden"}]

    refused = await mod.call("watch", {"room": str(room_id)})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    unknown = await mod.call("act", {"flag_id": str(room_id), "action": "dismiss"})
    assert unknown["error"]["code"] == "not_found"
    bad = await mod.call("act", {"flag_id": str(room_id), "action": "obliterate"})
    assert bad["error"]["code"] == "invalid"


async def test_threats_are_refused_before_storage_and_card_numbers_never_stored(
    room: Any, connect: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, vet = room
    alice, bob = await connect(owner[1]), await connect(vet[1])
    await bob.call("join", {"room": str(room_id)})
    threat = await alice.call(
        "send", {"room": str(room_id), "client_id": "t", "body": "I will find you and hurt you"}
    )
    assert threat["ok"] is False and threat["error"]["code"] == "forbidden"
    assert "threat" in threat["error"]["message"]

    card = await alice.call(
        "send",
        {
            "room": str(room_id),
            "client_id": "c",
            "body": "my card is 4242 4242 4242 4242, charge it",
        },
    )
    assert card["ok"] and "4242 4242 4242 4242" not in card["message"]["body"]
    assert card["message"]["body"].endswith("4242, charge it")
    [delivered] = await bob.wait_for("message", 1)
    assert delivered["body"] == card["message"]["body"] and delivered["seq"] == 1
    stored = await pool.fetch("SELECT body FROM messages WHERE room = $1", room_id)
    assert [row["body"] for row in stored] == [card["message"]["body"]]
