"""The `/chat` namespace over real sockets, against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
import redis.asyncio as aioredis

from domain.chat.conversations import create_conversation, list_conversations
from domain.chat.messages import store_message
from domain.identity import Role
from domain.identity.tokens import Principal
from pawhub.settings import Settings
from realtime import room_reads
from realtime.chat import ChatNamespace
from realtime.presence import Presence, room_key
from realtime.presence_news import ANNOUNCE_DELAY_S
from tests.recording_client import ChatClient
from tests.waiting import eventually


def principal_of(member: Any) -> Principal:
    user = member[0]
    return Principal(user_id=user.id, name=user.name, role=user.role)


async def test_a_message_is_stored_numbered_and_delivered_to_every_member(
    room: Any, connect: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, vet = room
    alice, bob = await connect(owner[1]), await connect(vet[1])
    for client in (alice, bob):
        joined = await client.call("join", {"room": str(room_id)})
        assert joined["ok"] and joined["last_seq"] == 0 and joined["missed"] == []

    ack = await alice.call("send", {"room": str(room_id), "client_id": "c1", "body": "Hi doc"})
    assert ack["ok"] is True
    message = ack["message"]
    assert message["seq"] == 1 and message["body"] == "Hi doc" and message["deleted"] is False
    assert message["sender"] == {"id": str(owner[0].id), "name": "Olive Owner", "role": "owner"}
    assert message["ts"].endswith("Z") and message["edited_at"] is None

    assert (await bob.wait_for("message", 1)) == [message]
    assert (await alice.wait_for("message", 1)) == [message]
    stored = await pool.fetchrow(
        "SELECT body, seq FROM messages WHERE id = $1", UUID(message["id"])
    )
    assert stored is not None and (stored["body"], stored["seq"]) == ("Hi doc", 1)


async def test_concurrent_senders_get_gapless_seqs_in_the_same_order_everywhere(
    room: Any, connect: Any
) -> None:
    room_id, owner, vet = room
    alice, bob = await connect(owner[1]), await connect(vet[1])
    for client in (alice, bob):
        await client.call("join", {"room": str(room_id)})

    async def burst(client: ChatClient, who: str) -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(
                *(
                    client.call(
                        "send", {"room": str(room_id), "client_id": f"{who}{i}", "body": f"{i}"}
                    )
                    for i in range(40)
                )
            )
        )

    acks = [*await burst(alice, "a"), *await burst(bob, "b")]
    assert all(ack["ok"] for ack in acks)
    assert sorted(ack["message"]["seq"] for ack in acks) == list(range(1, 81))
    for client in (alice, bob):
        await client.wait_for("message", 80)
        assert client.seqs() == list(range(1, 81))


async def test_the_same_client_id_yields_one_message(room: Any, connect: Any) -> None:
    room_id, owner, vet = room
    alice, bob = await connect(owner[1]), await connect(vet[1])
    await bob.call("join", {"room": str(room_id)})
    payload = {"room": str(room_id), "client_id": "retry-me", "body": "once"}
    first, second = await alice.call("send", payload), await alice.call("send", payload)
    assert first == second
    await alice.call("send", {"room": str(room_id), "client_id": "next", "body": "two"})
    await bob.wait_for("message", 2)
    assert bob.seqs() == [1, 2]


async def test_join_since_seq_recovers_exactly_what_was_missed(
    room: Any, connect: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, vet = room
    for i in range(7):
        await store_message(pool, room_id, principal_of(owner), f"m{i}", f"body {i}")
    bob = await connect(vet[1])
    joined = await bob.call("join", {"room": str(room_id), "since_seq": 4})
    assert joined["last_seq"] == 7 and joined["has_more"] is False
    assert [m["seq"] for m in joined["missed"]] == [5, 6, 7]
    assert [m["body"] for m in joined["missed"]] == ["body 4", "body 5", "body 6"]


async def test_recovery_is_capped_at_500_with_has_more(
    room: Any, connect: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, vet = room
    for i in range(505):
        await store_message(pool, room_id, principal_of(owner), f"m{i}", f"{i}")
    bob = await connect(vet[1])
    joined = await bob.call("join", {"room": str(room_id), "since_seq": 0})
    assert joined["has_more"] is True and joined["last_seq"] == 505
    assert [m["seq"] for m in joined["missed"]] == list(range(1, 501))
    rest = await bob.call("join", {"room": str(room_id), "since_seq": 500})
    assert [m["seq"] for m in rest["missed"]] == list(range(501, 506))
    assert rest["has_more"] is False


async def test_history_pages_backwards_oldest_first(
    room: Any, connect: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, vet = room
    for i in range(120):
        await store_message(pool, room_id, principal_of(owner), f"m{i}", f"{i}")
    bob = await connect(vet[1])
    newest = await bob.call("history", {"room": str(room_id)})
    assert [m["seq"] for m in newest["messages"]] == list(range(71, 121))
    assert newest["has_more"] is True
    older = await bob.call("history", {"room": str(room_id), "before_seq": 71, "limit": 100})
    assert [m["seq"] for m in older["messages"]] == list(range(1, 71))
    assert older["has_more"] is False
    too_many = await bob.call("history", {"room": str(room_id), "limit": 101})
    assert too_many["ok"] is False and too_many["error"]["code"] == "invalid"


async def test_only_the_sender_edits_and_the_seq_stays(room: Any, connect: Any) -> None:
    room_id, owner, vet = room
    alice, bob = await connect(owner[1]), await connect(vet[1])
    await bob.call("join", {"room": str(room_id)})
    sent = await alice.call("send", {"room": str(room_id), "client_id": "e", "body": "typo"})
    message_id = sent["message"]["id"]
    refused = await bob.call("edit", {"room": str(room_id), "id": message_id, "body": "hijack"})
    assert refused["error"] == {"code": "forbidden", "message": "only the sender edits a message"}
    edited = await alice.call("edit", {"room": str(room_id), "id": message_id, "body": "fixed"})
    assert edited["ok"] and edited["message"]["seq"] == 1
    assert edited["message"]["body"] == "fixed" and edited["message"]["edited_at"] is not None
    [event] = await bob.wait_for("message_edited", 1)
    assert event == {
        "room": str(room_id),
        "id": message_id,
        "seq": 1,
        "body": "fixed",
        "edited_at": edited["message"]["edited_at"],
    }
    page = await bob.call("history", {"room": str(room_id)})
    assert [(m["seq"], m["body"]) for m in page["messages"]] == [(1, "fixed")]


async def test_delete_is_a_redaction_seen_by_the_room(
    room: Any, connect: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, vet = room
    alice, bob = await connect(owner[1]), await connect(vet[1])
    await bob.call("join", {"room": str(room_id)})
    sent = await alice.call("send", {"room": str(room_id), "client_id": "d", "body": "secret"})
    message_id = sent["message"]["id"]
    assert (await bob.call("delete", {"room": str(room_id), "id": message_id}))["error"] == {
        "code": "forbidden",
        "message": "only the sender or a moderator deletes a message",
    }
    assert await alice.call("delete", {"room": str(room_id), "id": message_id}) == {"ok": True}
    [event] = await bob.wait_for("message_deleted", 1)
    assert event == {"room": str(room_id), "id": message_id, "seq": 1}
    body = await pool.fetchval("SELECT body FROM messages WHERE id = $1", UUID(message_id))
    assert body == ""
    [kept] = (await bob.call("history", {"room": str(room_id)}))["messages"]
    assert (kept["seq"], kept["body"], kept["deleted"]) == (1, "", True)
    again = await alice.call("edit", {"room": str(room_id), "id": message_id, "body": "x"})
    assert again["error"] == {"code": "not_found", "message": "no such message"}


async def test_a_message_is_edited_at_most_ten_times(room: Any, connect: Any) -> None:
    room_id, owner, _ = room
    alice = await connect(owner[1])
    sent = await alice.call("send", {"room": str(room_id), "client_id": "e", "body": "v0"})
    edit = {"room": str(room_id), "id": sent["message"]["id"]}
    for revision in range(1, 11):
        assert (await alice.call("edit", {**edit, "body": f"v{revision}"}))["ok"]
    refused = await alice.call("edit", {**edit, "body": "v11"})
    assert refused["error"] == {
        "code": "invalid",
        "message": "a message is edited at most 10 times",
    }


async def test_typing_reaches_others_but_not_the_typist(room: Any, connect: Any) -> None:
    room_id, owner, vet = room
    alice, bob = await connect(owner[1]), await connect(vet[1])
    for client in (alice, bob):
        await client.call("join", {"room": str(room_id)})
    assert await alice.call("typing", {"room": str(room_id), "typing": True}) == {"ok": True}
    [event] = await bob.wait_for("typing", 1)
    assert event == {"room": str(room_id), "user_id": str(owner[0].id), "typing": True}
    await asyncio.sleep(0.2)
    assert alice.received["typing"] == []


async def test_read_receipts_are_stored_and_counted_as_unread(
    room: Any, connect: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, vet = room
    alice, bob = await connect(owner[1]), await connect(vet[1])
    for client in (alice, bob):
        await client.call("join", {"room": str(room_id)})
    for i in range(5):
        await alice.call("send", {"room": str(room_id), "client_id": f"r{i}", "body": "hello"})
    [summary] = await list_conversations(pool, vet[0].id)
    assert (summary.last_seq, summary.unread) == (5, 5)
    [mine] = await list_conversations(pool, owner[0].id)
    assert mine.unread == 0  # one's own messages are read

    assert await bob.call("read", {"room": str(room_id), "seq": 3}) == {"ok": True, "seq": 3}
    [receipt] = await alice.wait_for("receipt", 1)
    assert receipt == {"room": str(room_id), "user_id": str(vet[0].id), "seq": 3}
    [summary] = await list_conversations(pool, vet[0].id)
    assert summary.unread == 2
    backwards = await bob.call("read", {"room": str(room_id), "seq": 1})
    assert backwards["seq"] == 3  # a read mark never moves back


async def test_presence_follows_joins_and_disconnects(room: Any, connect: Any) -> None:
    room_id, owner, vet = room
    bob = await connect(vet[1])
    await bob.call("join", {"room": str(room_id)})
    alice = await connect(owner[1])
    joined = await alice.call("join", {"room": str(room_id)})
    assert sorted(joined["online"]) == sorted([str(owner[0].id), str(vet[0].id)])
    [online] = await bob.wait_for("presence", 1)
    assert online == {"room": str(room_id), "user_id": str(owner[0].id), "online": True}

    # A second device brings nobody online: bob is told nothing.
    alices_phone = await connect(owner[1])
    await alices_phone.call("join", {"room": str(room_id)})
    sent = await alices_phone.call("send", {"room": str(room_id), "client_id": "p", "body": "hi"})
    await bob.wait_for("message", 1)
    await asyncio.sleep(ANNOUNCE_DELAY_S * 4)  # any presence the join caused is out by now
    assert bob.received["presence"] == [online]

    await alice.close()
    await alices_phone.close()
    offline = (await bob.wait_for("presence", 2))[1]
    assert offline == {"room": str(room_id), "user_id": str(owner[0].id), "online": False}
    assert sent["ok"]


async def test_bad_events_get_error_acks_and_change_nothing(
    room: Any, connect: Any, make_user: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, vet = room
    stranger = await make_user(Role.owner, "Stranger")
    alice, bob, eve = await connect(owner[1]), await connect(vet[1]), await connect(stranger[1])
    await bob.call("join", {"room": str(room_id)})
    await alice.call("join", {"room": str(room_id)})
    room_str = str(room_id)

    async def code(client: ChatClient, event: str, *payload: Any) -> str:
        return (await error(client, event, *payload))["code"]

    async def error(client: ChatClient, event: str, *payload: Any) -> dict[str, str]:
        ack = await client.call(event, *payload)
        assert ack["ok"] is False
        return dict(ack["error"])

    assert await code(alice, "send", {"room": room_str, "body": "no client id"}) == "invalid"
    assert await code(alice, "send", "just a string") == "invalid"
    assert await code(alice, "send", {"room": "not-a-uuid", "client_id": "x", "body": "y"}) == (
        "invalid"
    )
    assert (
        await code(alice, "send", {"room": room_str, "client_id": "x", "body": "a"}, "extra")
        == "invalid"
    )
    assert await code(alice, "no_such_event", {}) == "invalid"
    nul = {"room": room_str, "client_id": "n", "body": "a\x00b"}
    assert await code(alice, "send", nul) == "invalid"
    assert await code(alice, "send") == "invalid"
    assert await code(alice, "send", {"room": room_str, "client_id": "x", "body": " "}) == (
        "invalid"
    )
    assert await error(
        alice, "send", {"room": room_str, "client_id": "big", "body": "x" * 4001}
    ) == {
        "code": "too_large",
        "message": "body is over 4000 characters",
    }
    assert await error(eve, "join", {"room": room_str}) == {
        "code": "forbidden",
        "message": "you are not a member of this room",
    }
    assert await code(eve, "send", {"room": room_str, "client_id": "e", "body": "hi"}) == (
        "forbidden"
    )
    assert await code(eve, "history", {"room": room_str}) == "forbidden"
    async with pool.acquire() as conn:  # a room nobody joined here: eve's join opens it
        unhosted = await create_conversation(conn, owner[0].id, [vet[0].id], "Other")
    assert await code(eve, "join", {"room": str(unhosted.id)}) == "forbidden"
    assert await error(alice, "join", {"room": str(uuid4())}) == {
        "code": "not_found",
        "message": "no such room",
    }
    assert await error(alice, "delete", {"room": room_str, "id": str(uuid4())}) == {
        "code": "not_found",
        "message": "no such message",
    }

    # Nothing was stored or delivered, and every connection is still usable.
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE room = $1", room_id) == 0
    ok = await alice.call("send", {"room": room_str, "client_id": "fine", "body": "x" * 4000})
    assert ok["ok"] and ok["message"]["seq"] == 1
    await bob.wait_for("message", 1)
    assert bob.seqs() == [1] and eve.received["message"] == []
    assert (await eve.call("join", {"room": room_str}))["error"]["code"] == "forbidden"


async def test_a_connection_closed_while_joining_leaves_no_lease_behind(
    room: Any,
    connect: Any,
    pool: asyncpg.Pool,
    settings: Settings,
    redis: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A join still reading what its client missed when the connection closes finishes after
    the disconnect handler has run: it must undo itself, or the renewals would keep the user
    online for good."""
    room_id, owner, vet = room
    sender = Principal(user_id=vet[0].id, name=vet[0].name, role=vet[0].role)
    await store_message(pool, room_id, sender, "before", "one to miss")
    reading, release, disconnected, arrived = (asyncio.Event() for _ in range(4))
    real_read = room_reads.messages_after_each
    real_disconnect, real_arrive = ChatNamespace.on_disconnect, Presence.arrive

    async def held_read(*given: Any, **named: Any) -> Any:
        reading.set()
        await release.wait()
        return await real_read(*given, **named)

    async def noted_disconnect(namespace: ChatNamespace, sid: str, *rest: Any) -> None:
        await real_disconnect(namespace, sid, *rest)
        disconnected.set()

    async def noted_arrive(presence: Presence, *given: Any) -> Any:
        try:
            return await real_arrive(presence, *given)
        finally:
            arrived.set()

    monkeypatch.setattr(room_reads, "messages_after_each", held_read)
    monkeypatch.setattr(ChatNamespace, "on_disconnect", noted_disconnect)
    monkeypatch.setattr(Presence, "arrive", noted_arrive)
    alice = await connect(owner[1])
    joining = asyncio.create_task(alice.call("join", {"room": str(room_id), "since_seq": 0}))
    async with asyncio.timeout(10):
        await reading.wait()
        await alice.close()
        await disconnected.wait()
        release.set()
        await arrived.wait()

    leases = room_key(settings.redis_namespace, room_id)

    async def given_back() -> bool:
        return await redis.zcard(leases) == 0

    await eventually(given_back, "the closed connection's lease given back", timeout=5)
    joining.cancel()
    with contextlib.suppress(BaseException):
        await joining
