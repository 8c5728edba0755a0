"""Moderation cannot be fooled by what a sender does after sending.

An edit is held to everything a send is (the screen, the posting rules, scoring); a flag keeps
its evidence through edits and deletes until retention; the stream holds no text and is
trimmed as it is scored; lost hand-offs are found in PostgreSQL; a classifier failure on one
message is dead-lettered and the worker goes on. Over real sockets, against a hub, a scoring
worker, PostgreSQL and Redis of this module's own (a stream no other test's worker reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from domain.chat.actions import ModeratorAction, act_on_flag
from domain.chat.edits import edit_message
from domain.chat.messages import store_message
from domain.chat.moderation import EVIDENCE_RETENTION, purge_evidence, raise_model_flag
from domain.identity import Role
from domain.identity.tokens import Principal
from moderation.classifier import Scores
from moderation.default_model import VetProfanityClassifier
from moderation.pipeline import GROUP
from pawhub.resources import open_redis
from pawhub.settings import Settings
from realtime.handoff import ModerationHandoff, moderation_stream
from tests.conftest import start_hub
from tests.recording_client import ChatClient, ModeratorClient
from tests.scoring_worker import running_scoring_worker

ABUSE = "f4ck you, you useless quack"
BOMB = "kaboom-7f3a"  # the word the classifier below fails on
SWEEP_AFTER = 300.0
SWEEP_BATCH = 64


class FailingClassifier(VetProfanityClassifier):
    """The shipped model with a bug: it raises on any batch holding BOMB."""

    def score_batch(self, texts: Sequence[str]) -> list[Scores]:
        if any(BOMB in text for text in texts):
            raise ValueError("the model broke on this text")
        return super().score_batch(texts)


@dataclass
class Stack:
    url: str
    settings: Settings
    redis: aioredis.Redis
    stream: str


def integrity_worker(settings: Settings) -> contextlib.AbstractAsyncContextManager[None]:
    """A scoring worker with FailingClassifier that sweeps what is SWEEP_AFTER old."""
    return running_scoring_worker(
        settings, FailingClassifier, batch_size=SWEEP_BATCH, sweep_after=SWEEP_AFTER
    )


@pytest.fixture(scope="module")
async def stack(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[Stack]:
    """A hub and a scoring worker on a stream of this module's own."""
    settings = settings.model_copy(
        update={"redis_namespace": settings.redis_namespace + "-integrity", "chat_rate_limit": 0}
    )
    redis: aioredis.Redis = open_redis(settings.redis_url or "")
    async with integrity_worker(settings):
        runner, url = await start_hub(settings)
        yield Stack(url, settings, redis, moderation_stream(settings.redis_namespace))
        await runner.cleanup()
    await redis.aclose()


@pytest.fixture
async def clients(stack: Stack, room: Any, make_user: Any) -> AsyncIterator[Any]:
    """The room's owner and vet in /chat, joined, and a subscribed moderator."""
    room_id, owner, vet = room
    _, mod_token = await make_user(Role.moderator, "Mo Derator")
    alice = await ChatClient.connect(stack.url, owner[1])
    bob = await ChatClient.connect(stack.url, vet[1])
    mod = await ModeratorClient.connect(stack.url, mod_token)
    for client in (alice, bob):
        assert (await client.call("join", {"room": str(room_id)}))["ok"]
    assert (await mod.call("subscribe", {}))["ok"]
    yield alice, bob, mod, mod_token
    await asyncio.gather(alice.close(), bob.close(), mod.close())


async def send(client: ChatClient, room: UUID, client_id: str, body: str) -> dict[str, Any]:
    ack = await client.call("send", {"room": str(room), "client_id": client_id, "body": body})
    assert ack["ok"], ack
    message: dict[str, Any] = ack["message"]
    return message


async def edit(client: ChatClient, room: UUID, message_id: str, body: str) -> dict[str, Any]:
    return await client.call("edit", {"room": str(room), "id": message_id, "body": body})


async def stored_body(pool: asyncpg.Pool, message_id: str) -> str:
    body: str = await pool.fetchval("SELECT body FROM messages WHERE id = $1", UUID(message_id))
    return body


async def test_an_edit_is_screened_like_a_send(room: Any, clients: Any, pool: asyncpg.Pool) -> None:
    room_id = room[0]
    alice, bob, _, _ = clients
    sent = await send(alice, room_id, "s", "see you at the clinic")

    threat = await edit(alice, room_id, sent["id"], "I will find you and hurt you")
    assert threat["ok"] is False and threat["error"]["code"] == "forbidden"
    assert "threat" in threat["error"]["message"]
    assert await stored_body(pool, sent["id"]) == "see you at the clinic"

    card = await edit(alice, room_id, sent["id"], "my card is 4242 4242 4242 4242, charge it")
    assert card["ok"] and card["message"]["body"] == "my card is **** **** **** 4242, charge it"
    [edited] = await bob.wait_for("message_edited", 1)
    assert edited["body"] == card["message"]["body"]
    assert await stored_body(pool, sent["id"]) == card["message"]["body"]
    kept = await pool.fetch(
        "SELECT body FROM message_revisions WHERE message_id = $1", UUID(sent["id"])
    )
    assert [row["body"] for row in kept] == ["see you at the clinic"]  # no card number kept


async def test_a_muted_or_removed_member_cannot_edit(
    room: Any, clients: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, vet = room
    alice, bob, _, _ = clients
    mine = await send(alice, room_id, "a", "first draft")
    theirs = await send(bob, room_id, "b", "the vet's words")
    await pool.execute(
        "INSERT INTO room_mutes (room, user_id, until) VALUES ($1, $2, now() + interval '1 hour')",
        room_id,
        owner[0].id,
    )
    muted = await edit(alice, room_id, mine["id"], "second draft")
    assert muted["ok"] is False and muted["error"]["code"] == "forbidden"
    assert "muted" in muted["error"]["message"]
    assert await stored_body(pool, mine["id"]) == "first draft"

    not_yours = await edit(bob, room_id, mine["id"], "hijack")
    assert not_yours["error"]["code"] == "forbidden"
    await pool.execute(
        "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
        room_id,
        vet[0].id,
    )
    removed = await edit(bob, room_id, theirs["id"], "after removal")
    assert removed["error"]["code"] == "forbidden" and "member" in removed["error"]["message"]
    assert await stored_body(pool, theirs["id"]) == "the vet's words"
    # The refusals left the connection up.
    assert (await alice.call("history", {"room": str(room_id)}))["ok"]


async def test_an_edited_message_is_scored_again_and_can_raise_a_flag(
    room: Any, clients: Any, pool: asyncpg.Pool
) -> None:
    room_id = room[0]
    alice, _, mod, _ = clients
    sent = await send(alice, room_id, "e", "what a lovely dog")
    await wait_moderated(pool, sent["id"], 0)
    assert await flags_of(pool, sent["id"]) == 0

    assert (await edit(alice, room_id, sent["id"], ABUSE))["ok"]
    flag = await mod.wait_until("flag", lambda f: f["message"]["id"] == sent["id"])
    assert (flag["source"], flag["revision"], flag["message"]["body"]) == ("model", 1, ABUSE)
    assert [(e["revision"], e["body"], e["replaced_by"]) for e in flag["edits"]] == [
        (0, "what a lovely dog", "edit")
    ]


async def test_a_flag_keeps_its_evidence_through_edits_and_deletes(
    api_url: str, room: Any, clients: Any, pool: asyncpg.Pool
) -> None:
    room_id = room[0]
    alice, bob, mod, mod_token = clients
    sent = await send(alice, room_id, "x", ABUSE)
    flag = await mod.wait_until("flag", lambda f: f["message"]["id"] == sent["id"])
    assert flag["message"]["body"] == ABUSE and flag["current"] == ABUSE and flag["edits"] == []

    assert (await edit(alice, room_id, sent["id"], "lovely dog"))["ok"]
    assert (await alice.call("delete", {"room": str(room_id), "id": sent["id"]}))["ok"]
    await bob.wait_for("message_deleted", 1)
    page = await bob.call("history", {"room": str(room_id)})
    assert [(m["body"], m["deleted"]) for m in page["messages"]] == [("", True)]

    def shows_evidence(shown: dict[str, Any]) -> None:
        assert shown["id"] == flag["id"]
        assert shown["message"]["body"] == ABUSE and shown["message"]["deleted"] is True
        assert shown["current"] == ""
        assert [(e["body"], e["replaced_by"]) for e in shown["edits"]] == [
            (ABUSE, "edit"),
            ("lovely dog", "delete"),
        ]

    [listed] = [f for f in (await mod.call("subscribe", {}))["open"] if f["id"] == flag["id"]]
    shows_evidence(listed)
    acted = await mod.call("act", {"flag_id": flag["id"], "action": "dismiss"})
    shows_evidence(acted["flag"])
    shows_evidence(await mod.wait_until("flag_updated", lambda f: f["id"] == flag["id"]))
    headers = {"Authorization": f"Bearer {mod_token}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers) as http:
        page = (await http.get("/v1/moderation/flags", params={"room": str(room_id)})).json()
    [rest_flag] = page["flags"]
    shows_evidence(rest_flag)


async def test_kept_text_is_purged_once_its_flag_is_closed_and_retention_passed(
    stack: Stack, room: Any, clients: Any, pool: asyncpg.Pool
) -> None:
    room_id = room[0]
    alice, _, mod, _ = clients
    closed = await send(alice, room_id, "c", ABUSE)
    still_open = await send(alice, room_id, "o", ABUSE + "!")
    flags = {
        message["id"]: await mod.wait_until(
            "flag", lambda f, m=message: f["message"]["id"] == m["id"]
        )
        for message in (closed, still_open)
    }
    for message in (closed, still_open):
        assert (await edit(alice, room_id, message["id"], "lovely dog"))["ok"]
    assert (await mod.call("act", {"flag_id": flags[closed["id"]]["id"], "action": "dismiss"}))[
        "ok"
    ]
    await purge_evidence(pool)
    assert await kept_text(pool, closed["id"]) == ([ABUSE], [ABUSE])  # retention not passed

    for message in (closed, still_open):
        await backdate(pool, message["id"], EVIDENCE_RETENTION + timedelta(days=1))
    # A worker purges as it starts (and every hour).
    idle = stack.settings.model_copy(
        update={"redis_namespace": stack.settings.redis_namespace + "-purge"}
    )
    async with integrity_worker(idle):
        await wait_for(lambda: kept_text(pool, closed["id"]), until=([None], []), timeout=60)
    assert await kept_text(pool, still_open["id"]) == ([ABUSE + "!"], [ABUSE + "!"])
    open_flags = (await mod.call("subscribe", {}))["open"]
    [listed] = [f for f in open_flags if f["id"] == flags[still_open["id"]]["id"]]
    assert listed["message"]["body"] == ABUSE + "!" and listed["current"] == "lovely dog"


async def test_pawhub_moderation_purge_forgets_kept_text_past_retention(
    settings: Settings, room: Any, pool: asyncpg.Pool, make_user: Any
) -> None:
    room_id, owner, _ = room
    mod_user, _ = await make_user(Role.moderator)
    sender = Principal(user_id=owner[0].id, name=owner[0].name, role=owner[0].role)
    moderator = Principal(user_id=mod_user.id, name=mod_user.name, role=mod_user.role)
    message, _ = await store_message(pool, room_id, sender, "cli", ABUSE)
    flag = await raise_model_flag(pool, room_id, message.id, {"insult": 0.9}, "insult", "m", "1")
    assert flag is not None
    await edit_message(pool, room_id, message.id, sender.user_id, "lovely dog")
    await act_on_flag(pool, flag.id, moderator, ModeratorAction.dismiss, None, None)
    await backdate(pool, str(message.id), timedelta(days=31))

    purge = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pawhub",
        "moderation",
        "purge",
        "--retention-days",
        "30",
        env={**os.environ, "DATABASE_URL": settings.database_url or ""},
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await purge.communicate()
    assert purge.returncode == 0 and output.startswith(b"purged the evidence of ")
    assert await kept_text(pool, str(message.id)) == ([None], [])


async def test_the_stream_holds_no_text_and_is_trimmed_as_it_is_scored(
    stack: Stack, settings: Settings, room: Any, clients: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, _ = room
    alice, _, mod, _ = clients
    sent = await send(alice, room_id, "t", ABUSE)
    await mod.wait_until("flag", lambda f: f["message"]["id"] == sent["id"])
    await wait_for(lambda: stream_drained(stack))

    # A stream nobody reads: what the hub's hand-off writes there.
    prefix = settings.redis_namespace + "-unread"
    handoff = ModerationHandoff(stack.redis, prefix)
    await handoff.start()
    try:
        sender = Principal(user_id=owner[0].id, name=owner[0].name, role=owner[0].role)
        message, _ = await store_message(pool, room_id, sender, "unread", ABUSE)
        handoff.submit(message)
        entries = await wait_for(lambda: stack.redis.xrange(handoff.stream))
    finally:
        await handoff.stop()
        await stack.redis.delete(handoff.stream)
    [(_, fields)] = entries
    assert set(fields) == {b"id", b"room", b"ts"} and fields[b"id"] == str(message.id).encode()
    assert not any(b"quack" in value for value in fields.values())


async def test_a_message_whose_hand_off_was_lost_is_found_and_scored(
    room: Any, clients: Any, pool: asyncpg.Pool
) -> None:
    room_id, owner, _ = room
    _, _, mod, _ = clients
    sender = Principal(user_id=owner[0].id, name=owner[0].name, role=owner[0].role)
    # Stored, acknowledged, never handed off (the hub died): only PostgreSQL knows of them.
    # Five batches of them, then the abusive one, all a year old: older than any other test's
    # unscored messages, so swept first, in this order; one batch per 10 s would take 50 s.
    lost = [
        (await store_message(pool, room_id, sender, f"lost {n}", f"lost hand-off {n}"))[0].id
        for n in range(5 * SWEEP_BATCH)
    ]
    message, _ = await store_message(pool, room_id, sender, "lost", ABUSE)
    await pool.execute(
        "UPDATE messages SET created_at = created_at - $2::interval WHERE id = ANY($1::uuid[])",
        [*lost, message.id],
        timedelta(days=365),
    )
    flag = await mod.wait_until("flag", lambda f: f["message"]["id"] == str(message.id), 40)
    assert flag["message"]["body"] == ABUSE and flag["source"] == "model"
    await wait_moderated(pool, str(message.id), 0)


async def test_a_classifier_failure_dead_letters_one_message_and_scoring_goes_on(
    stack: Stack, room: Any, clients: Any, pool: asyncpg.Pool
) -> None:
    room_id = room[0]
    alice, _, mod, _ = clients
    broken = await send(alice, room_id, "bomb", f"my dog ate a {BOMB}")
    after = await send(alice, room_id, "after", ABUSE)
    flag = await mod.wait_until("flag", lambda f: f["message"]["id"] == after["id"])
    assert flag["message"]["body"] == ABUSE
    dead = await wait_for(
        lambda: pool.fetchrow(
            "SELECT revision, error FROM moderation_dead_letters WHERE message_id = $1",
            UUID(broken["id"]),
        )
    )
    assert dead["revision"] == 0 and "the model broke" in dead["error"]
    await wait_moderated(pool, broken["id"], 0)  # not retried by the sweep
    assert await flags_of(pool, broken["id"]) == 0
    later = await send(alice, room_id, "later", ABUSE + " again")
    await mod.wait_until("flag", lambda f: f["message"]["id"] == later["id"])
    await wait_for(lambda: stream_drained(stack))


async def wait_for(probe: Any, until: Any = None, timeout: float = 20) -> Any:
    """The first result of the coroutine function `probe` that is `until` (or truthy), polled."""
    async with asyncio.timeout(timeout):
        while True:
            result = await probe()
            if result == until if until is not None else result:
                return result
            await asyncio.sleep(0.05)


async def wait_moderated(pool: asyncpg.Pool, message_id: str, revision: int) -> None:
    async def moderated() -> bool:
        value = await pool.fetchval(
            "SELECT moderated_revision FROM messages WHERE id = $1", UUID(message_id)
        )
        return bool(value == revision)

    await wait_for(moderated)


async def flags_of(pool: asyncpg.Pool, message_id: str) -> int:
    return int(
        await pool.fetchval("SELECT count(*) FROM flags WHERE message_id = $1", UUID(message_id))
    )


async def kept_text(pool: asyncpg.Pool, message_id: str) -> tuple[list[str | None], list[str]]:
    """The flags' evidence and the replaced bodies kept for a message."""
    evidence = await pool.fetch(
        "SELECT evidence FROM flags WHERE message_id = $1", UUID(message_id)
    )
    bodies = await pool.fetch(
        "SELECT body FROM message_revisions WHERE message_id = $1 ORDER BY revision",
        UUID(message_id),
    )
    return [row["evidence"] for row in evidence], [row["body"] for row in bodies]


async def backdate(pool: asyncpg.Pool, message_id: str, age: timedelta) -> None:
    """Make a message's flags and replaced bodies `age` old."""
    for table, column in (("flags", "updated_at"), ("message_revisions", "replaced_at")):
        await pool.execute(
            f"UPDATE {table} SET {column} = now() - $2::interval WHERE message_id = $1",
            UUID(message_id),
            age,
        )


async def stream_drained(stack: Stack) -> bool:
    pending = await stack.redis.xpending(stack.stream, GROUP)
    length: int = await stack.redis.xlen(stack.stream)
    return pending["pending"] == 0 and length == 0
