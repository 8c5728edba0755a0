"""A live socket is not forever: it lives as long as its access token (plus a grace) unless it
renews it with `auth`, and a demoted moderator's next action is refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from domain.identity import Role, User
from domain.identity.tokens import issue_access_token, verify_access_token
from pawhub.settings import Settings
from realtime.limits import SocketLimits
from tests.conftest import start_hub
from tests.recording_client import ChatClient, ModeratorClient

GRACE_S = 0.5
TOKEN_TTL = timedelta(seconds=2)


@pytest.fixture(scope="module")
async def hub(settings: Settings) -> AsyncIterator[str]:
    """A hub whose sockets outlive their token by GRACE_S only."""
    runner, url = await start_hub(settings, SocketLimits(session_grace_s=GRACE_S))
    yield url
    await runner.cleanup()


def token(user: User, settings: Settings, ttl: timedelta = TOKEN_TTL) -> str:
    return issue_access_token(user, settings.jwt_secret, ttl=ttl)


def expiry(token_text: str, settings: Settings) -> datetime:
    expires_at = verify_access_token(token_text, settings.jwt_secret).expires_at
    assert expires_at is not None
    return expires_at


class SessionWatch:
    """What the hub tells one client about its session, in order, with the time it happened."""

    def __init__(self, client: ChatClient) -> None:
        self.seen: list[tuple[str, float]] = []
        self.ended = asyncio.Event()
        client.sio.on("expired", self._expired, namespace="/chat")
        client.sio.on("disconnect", self._disconnected, namespace="/chat")

    async def _expired(self, _: Any) -> None:
        self.seen.append(("expired", time.time()))

    async def _disconnected(self, *_: Any) -> None:
        self.seen.append(("disconnect", time.time()))
        self.ended.set()


async def test_a_socket_that_does_not_renew_is_told_and_disconnected(
    hub: str, room: Any, settings: Settings
) -> None:
    await told_and_disconnected(hub, room, settings)


async def test_with_a_write_delay_the_socket_is_still_told_before_it_is_disconnected(
    room: Any, settings: Settings
) -> None:
    delayed = settings.model_copy(update={"fanout_write_delay_ms": 20})
    runner, url = await start_hub(delayed, SocketLimits(session_grace_s=GRACE_S))
    try:
        await told_and_disconnected(url, room, settings)
    finally:
        await runner.cleanup()


async def told_and_disconnected(hub: str, room: Any, settings: Settings) -> None:
    """A socket whose token expires is told `expired`, then disconnected; others carry on."""
    room_id, owner, vet = room
    short = token(owner[0], settings)
    expires_at = expiry(short, settings)
    client, other = await ChatClient.connect(hub, short), await ChatClient.connect(hub, vet[1])
    watch = SessionWatch(client)
    try:
        assert (await client.call("join", {"room": str(room_id)}))["ok"]
        await asyncio.wait_for(watch.ended.wait(), 30)
        assert [name for name, _ in watch.seen] == ["expired", "disconnect"]
        assert watch.seen[0][1] >= expires_at.timestamp()
        assert not client.sio.connected
        sent = await other.call("send", {"room": str(room_id), "client_id": "x", "body": "hi"})
        assert sent["ok"] and other.sio.connected
    finally:
        await client.close()
        await other.close()


async def test_auth_with_a_fresh_token_keeps_the_socket_past_the_first_expiry(
    hub: str, room: Any, settings: Settings
) -> None:
    room_id, owner, _ = room
    short = token(owner[0], settings)
    ended_by = expiry(short, settings).timestamp() + GRACE_S
    client = await ChatClient.connect(hub, short)
    watch = SessionWatch(client)
    try:
        assert (await client.call("join", {"room": str(room_id)}))["ok"]
        fresh = token(owner[0], settings, timedelta(minutes=15))
        renewed = await client.call("auth", {"token": fresh})
        assert renewed == {"ok": True, "expires_at": expiry(fresh, settings).isoformat()}
        await asyncio.sleep(ended_by - time.time() + 1.5)
        assert client.sio.connected and watch.seen == []
        sent = await client.call("send", {"room": str(room_id), "client_id": "y", "body": "on"})
        assert sent["ok"]
    finally:
        await client.close()


async def test_a_refused_renewal_leaves_the_session_as_it_was(
    hub: str, room: Any, settings: Settings
) -> None:
    room_id, owner, vet = room
    client = await ChatClient.connect(hub, owner[1])
    lapsed = issue_access_token(
        owner[0], settings.jwt_secret, now=datetime.now(UTC) - timedelta(hours=1)
    )
    try:
        assert (await client.call("auth", {"token": vet[1]}))["error"]["code"] == "forbidden"
        for bad in ("not a token", lapsed):
            refused = await client.call("auth", {"token": bad})
            assert refused["error"]["code"] == "unauthorized", bad
        assert (await client.call("auth", {}))["error"]["code"] == "invalid"
        assert client.sio.connected
        sent = await client.call("send", {"room": str(room_id), "client_id": "z", "body": "me"})
        assert sent["message"]["sender"]["id"] == str(owner[0].id)
    finally:
        await client.close()


async def flagged_message(hub: str, room: Any) -> tuple[str, str]:
    """A message of the room that its other member reported: (flag id, message id)."""
    room_id, owner, vet = room
    sender, reporter = (
        await ChatClient.connect(hub, owner[1]),
        await ChatClient.connect(hub, vet[1]),
    )
    try:
        sent = await sender.call(
            "send", {"room": str(room_id), "client_id": "f", "body": "pay me off the app"}
        )
        reported = await reporter.call(
            "report", {"room": str(room_id), "id": sent["message"]["id"], "reason": "off-app"}
        )
        assert reported["ok"], reported
        return reported["flag_id"], sent["message"]["id"]
    finally:
        await sender.close()
        await reporter.close()


async def test_a_demoted_moderator_can_no_longer_act_or_watch(
    hub: str, room: Any, make_user: Any, pool: asyncpg.Pool, settings: Settings
) -> None:
    room_id = str(room[0])
    flag_id, _ = await flagged_message(hub, room)
    user, mod_token = await make_user(Role.moderator, "Mo Derator")
    moderator = await ModeratorClient.connect(hub, mod_token)
    try:
        assert (await moderator.call("subscribe", {}))["ok"]
        assert (await moderator.call("watch", {"room": room_id}))["ok"]
        await pool.execute("UPDATE users SET role = 'owner' WHERE id = $1", user.id)

        acted = await moderator.call("act", {"flag_id": flag_id, "action": "dismiss"})
        assert acted["error"]["code"] == "forbidden"
        for name, payload in (("watch", {"room": room_id}), ("subscribe", {})):
            assert (await moderator.call(name, payload))["error"]["code"] == "forbidden", name
        status = await pool.fetchval("SELECT status FROM flags WHERE id = $1", flag_id)
        assert status == "open"
        as_owner = issue_access_token(
            user.model_copy(update={"role": Role.owner}), settings.jwt_secret
        )
        renewed = await moderator.call("auth", {"token": as_owner})
        assert renewed["error"]["code"] == "forbidden"
        assert moderator.sio.connected
    finally:
        await moderator.close()


async def test_a_moderator_still_in_role_acts(hub: str, room: Any, make_user: Any) -> None:
    flag_id, _ = await flagged_message(hub, room)
    _, mod_token = await make_user(Role.moderator, "Mo Derator")
    moderator = await ModeratorClient.connect(hub, mod_token)
    try:
        acted = await moderator.call("act", {"flag_id": flag_id, "action": "dismiss"})
        assert acted["ok"] and acted["flag"]["status"] == "dismissed"
    finally:
        await moderator.close()
