"""Chaos behind the load balancer: three hub replicas behind Debian's nginx running the shipped
configuration (deploy/nginx), members chatting in many rooms through it, while a replica is
killed (SIGKILL), Redis restarts, PostgreSQL (a cluster of the test's own) restarts and a replica
drains (SIGTERM), and consults' vets and owners stay in their calls on `/rtc`, rejoining
through the balancer whenever their connection fails, with video flowing both ways through the
hub's media server (`sfu` mode, aiortc peers reconnecting as the page does). Nothing
acknowledged is lost, nothing is
delivered twice, every member ends with every message of its room, in order of seq, presence is
right again (everyone online, nobody told their partner left), and every consult's vet and owner
are back in their call together (the owner not sent back to the lobby) and decode each other's
video again, by themselves;
how long each fault kept members from having a message acknowledged is reported (p50 and p99
over the members, per fault).

`make test` runs one round of each fault with CHAOS_MEMBERS=40 in 20 rooms and 4 consults;
`make chaos` runs CHAOS_ROUNDS rounds with 300 members in 150 rooms and 10 consults.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
import redis.asyncio as aioredis
import socketio

from bench.media.consults import make_video_consult
from deploy.embedded import EmbeddedPostgres, free_port
from domain.chat.conversations import create_conversation
from domain.identity import NewUser, Role
from domain.identity.tokens import issue_access_token
from domain.identity.users import create_user
from pawhub.resources import migrate_database
from pawhub.settings import Settings
from realtime.presence import LEASE_S as PRESENCE_LEASE_S
from realtime.presence import REAP_EVERY_S as PRESENCE_REAP_S
from realtime.presence import room_key
from tests.deploy.nginx_process import running_nginx
from tests.e2e.hubs import HubProcess, own_redis, start_hub_process
from tests.e2e.sfu_media import SfuMedia

pytestmark = [pytest.mark.slow, pytest.mark.exclusive]

ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "1"))
MEMBERS = int(os.environ.get("CHAOS_MEMBERS", "40"))  # two per room
CONSULTS = int(os.environ.get("CHAOS_CONSULTS", "4"))
REPLICAS = 3
DRAIN_BOUND_S = 10  # a replica's SIGTERM to its exit
SEND_EVERY_S = 1.0  # each member's pace
SETTLE_S = 3.0  # chatting between faults
VET_LUMA, OWNER_LUMA = 50, 120  # who sent a decoded frame
MEDIA_FRAMES = 15  # a second of fresh video, each way, in every consult
MEDIA_BACK_S = 60  # a killed replica's lease (20 s), its reaping, `sfu_lost`, renegotiation


class Member:
    """A chat member that reconnects through the balancer and recovers by since_seq."""

    def __init__(self, name: str, token: str, room: str, url: str, partner: str) -> None:
        self.name, self.token, self.room, self.url = name, token, room, url
        self.partner = partner  # the other member's user id
        self.seen: list[int] = []  # every delivery, live or recovered, in arrival order
        self.acked_at: list[float] = []  # when each of its sends was acknowledged
        self.partner_online: list[bool] = []  # presence of the partner told on this connection
        self.sio: socketio.AsyncClient | None = None

    async def ensure_connected(self) -> socketio.AsyncClient:
        while self.sio is None or not self.sio.connected:
            sio = socketio.AsyncClient(reconnection=False)
            sio.on("message", self._delivered, namespace="/chat")
            sio.on("presence", self._presence, namespace="/chat")
            self.partner_online = []
            try:
                await sio.connect(
                    self.url,
                    auth={"token": self.token},
                    namespaces=["/chat"],
                    transports=["websocket"],
                    wait_timeout=5,
                )
                has_more = True
                while has_more:
                    since = max(self.seen, default=0)
                    joined = await sio.call(
                        "join",
                        {"room": self.room, "since_seq": since},
                        namespace="/chat",
                        timeout=5,
                    )
                    if not joined["ok"]:
                        raise ConnectionError(joined["error"])
                    self.seen.extend(m["seq"] for m in joined["missed"])
                    has_more = joined["has_more"]
                self.sio = sio
            except Exception:
                with contextlib.suppress(Exception):
                    await sio.disconnect()
                await asyncio.sleep(0.2)
        return self.sio

    async def _delivered(self, message: dict[str, Any]) -> None:
        self.seen.append(message["seq"])

    async def _presence(self, event: dict[str, Any]) -> None:
        if event["room"] == self.room and event["user_id"] == self.partner:
            self.partner_online.append(event["online"])

    async def send(self, client_id: str) -> int:
        """Send until acknowledged, reconnecting as needed; the seq it was stored under."""
        while True:
            sio = await self.ensure_connected()
            body = {"room": self.room, "client_id": client_id, "body": f"{self.name} {client_id}"}
            try:
                ack = await sio.call("send", body, namespace="/chat", timeout=3)
            except Exception:
                with contextlib.suppress(Exception):
                    await sio.disconnect()
                continue
            if not ack["ok"] and ack["error"]["code"] == "unavailable":  # draining, or a store out
                await sio.disconnect()
                await asyncio.sleep(0.2)
                continue
            assert ack["ok"], ack
            self.acked_at.append(time.monotonic())
            return int(ack["message"]["seq"])

    async def close(self) -> None:
        if self.sio is not None:
            with contextlib.suppress(Exception):
                await self.sio.disconnect()


class CallMember:
    """A consult's vet or owner on `/rtc` in `sfu` mode, rejoining through the balancer when its
    connection fails (within the reconnect grace it keeps its place in the call) and connecting
    its media to the media server anew whenever it is back in the call, as the page does."""

    def __init__(self, token: str, consult_id: str, url: str, luma: int) -> None:
        self.token, self.consult_id, self.url = token, consult_id, url
        self.sio: socketio.AsyncClient | None = None
        self.media = SfuMedia(consult_id, luma)

    async def call(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """`event`'s ack, reconnecting and retrying until it is answered `ok`."""
        while True:
            try:
                if self.sio is None or not self.sio.connected:
                    self.sio = socketio.AsyncClient(reconnection=False)
                    self.media.attach(self.sio)
                    await self.sio.connect(
                        self.url,
                        auth={"token": self.token},
                        namespaces=["/rtc"],
                        transports=["websocket"],
                        wait_timeout=5,
                    )
                ack: dict[str, Any] = await self.sio.call(event, data, namespace="/rtc", timeout=5)
                if ack["ok"]:
                    return ack
            except Exception:
                pass
            with contextlib.suppress(Exception):
                await self.sio.disconnect()  # type: ignore[union-attr]
            await asyncio.sleep(0.2)

    async def join(self) -> dict[str, Any]:
        """Join (again); in the call, the media connects anew."""
        joined = await self.call("join", {"consult_id": self.consult_id, "mode": "sfu"})
        if not joined["waiting"]:
            self.media.open()
        return joined

    async def stay(self) -> None:
        """Rejoin whenever the connection has dropped, for as long as the task runs."""
        while True:
            if self.sio is None or not self.sio.connected:
                await self.join()
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        await self.media.close()
        if self.sio is not None:
            with contextlib.suppress(Exception):
                await self.sio.disconnect()


async def calls(pool: asyncpg.Pool, jwt_secret: str, url: str) -> list[tuple[CallMember, ...]]:
    """CONSULTS video consults, each vet in the call with their owner admitted."""
    pairs = []
    for _ in range(CONSULTS):
        consult = await make_video_consult(pool, jwt_secret)
        vet = CallMember(consult.vet.token, consult.id, url, VET_LUMA)
        owner = CallMember(consult.owner.token, consult.id, url, OWNER_LUMA)
        await vet.join()
        assert (await owner.join())["waiting"] is True
        await vet.call("admit", {"consult_id": consult.id, "user_id": consult.owner.id})
        assert (await owner.join())["waiting"] is False  # admitted: the media connects
        pairs.append((vet, owner))
    return pairs


async def chat_rooms(pool: asyncpg.Pool, jwt_secret: str, url: str) -> list[Member]:
    """MEMBERS // 2 conversations of an owner and a vet, both members chatting through `url`."""
    members: list[Member] = []
    for index in range(MEMBERS // 2):
        people = []
        for role in (Role.owner, Role.vet):
            new = NewUser(
                email=f"{uuid4().hex[:12]}@example.com",
                password="correct horse",
                name=f"{role.value} {index}",
                role=role,
            )
            people.append(await create_user(pool, new))
        owner, vet = people
        async with pool.acquire() as conn:
            room = await create_conversation(conn, owner.id, [vet.id], f"Pet {index}")
        for person, partner in ((owner, vet), (vet, owner)):
            token = issue_access_token(person, jwt_secret)
            members.append(Member(person.name, token, str(room.id), url, str(partner.id)))
    return members


async def media_flows(consults: list[tuple[CallMember, ...]]) -> float:
    """Wait until, in every consult, each side decodes MEDIA_FRAMES fresh frames of the other's
    video; how long that took."""
    pairs = [(one, other) for vet, owner in consults for one, other in ((vet, owner), (owner, vet))]

    def decoded() -> list[int]:
        return [one.media.frames_from(other.media.luma) for one, other in pairs]

    before = decoded()
    started = time.monotonic()
    while True:
        fresh = [now - then for now, then in zip(decoded(), before, strict=True)]
        if min(fresh) >= MEDIA_FRAMES:
            return time.monotonic() - started
        if time.monotonic() - started > MEDIA_BACK_S:
            stuck = [
                (
                    one.consult_id,
                    one.media.luma,
                    one.media.opened,
                    one.media.lost,
                    one.media.repaired,
                    frames,
                )
                for (one, _), frames in zip(pairs, fresh, strict=True)
            ]
            raise AssertionError(
                f"no video (consult, luma, opened, lost, repaired, frames): {stuck}"
            )
        await asyncio.sleep(0.2)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def test_chat_survives_faults_behind_the_load_balancer(
    settings: Settings, tmp_path: Path
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "postgres", port=free_port())
    database = postgres.start()
    await migrate_database(database.url)
    redis, redis_server, own = own_redis(settings, tmp_path)
    own = own.model_copy(update={"database_url": database.url})
    ports = [free_port() for _ in range(REPLICAS)]
    hubs: list[HubProcess] = [await start_hub_process(own, port=port) for port in ports]
    acked: dict[str, tuple[str, int]] = {}
    sending = True
    injected: list[tuple[str, float]] = []  # each fault, and when it began

    async def chatter(member: Member) -> None:
        index = 0
        while sending:
            client_id = f"{member.name}-{index}-{uuid4().hex[:6]}"
            acked[client_id] = (member.room, await member.send(client_id))
            index += 1
            await asyncio.sleep(SEND_EVERY_S)

    async def restart_replica(victim: int, how: signal.Signals) -> None:
        hubs[victim].process.send_signal(how)
        code = await asyncio.to_thread(hubs[victim].process.wait, DRAIN_BOUND_S)
        assert how is signal.SIGKILL or code == 0, code  # a drain exits cleanly in time
        hubs[victim] = await start_hub_process(own, port=ports[victim])

    async def restart_redis() -> None:
        nonlocal redis_server
        redis_server.stop()
        await asyncio.sleep(2)
        redis_server = redis.start()

    async def restart_postgres() -> None:
        nonlocal database
        database.stop()
        await asyncio.sleep(2)
        database = await asyncio.to_thread(postgres.start)

    faults: list[tuple[str, Callable[[int], Awaitable[None]]]] = [
        ("replica killed", lambda n: restart_replica(n % REPLICAS, signal.SIGKILL)),
        ("redis restarted", lambda _: restart_redis()),
        ("postgres restarted", lambda _: restart_postgres()),
        ("replica drained", lambda n: restart_replica((n + 1) % REPLICAS, signal.SIGTERM)),
    ]
    members: list[Member] = []
    consults: list[tuple[CallMember, ...]] = []
    senders: list[asyncio.Task[None]] = []
    (tmp_path / "nginx").mkdir()
    with running_nginx(tmp_path / "nginx", ports, api_port=free_port()) as url:
        try:
            async with asyncpg.create_pool(database.url, min_size=1, max_size=4) as pool:
                members = await chat_rooms(pool, own.jwt_secret, url)
                consults = await calls(pool, own.jwt_secret, url)
            senders = [asyncio.create_task(chatter(member)) for member in members]
            staying = [asyncio.create_task(one.stay()) for pair in consults for one in pair]
            for round_ in range(ROUNDS):
                for name, fault in faults:
                    await asyncio.sleep(SETTLE_S)
                    injected.append((name, time.monotonic()))
                    await fault(round_)
            await asyncio.sleep(SETTLE_S)
            sending = False
            await asyncio.wait_for(asyncio.gather(*senders), 60)
            media_back_s = await media_flows(consults)
            for task in staying:
                task.cancel()
            for vet, owner in consults:  # both back in the call, together
                await vet.join()
                back = await owner.join()
                assert back["waiting"] is False, "the owner was sent back to the lobby"
                assert back["you"]["role"] == "owner" and [
                    peer["role"] for peer in back["peers"]
                ] == ["vet"]

            pool = await asyncpg.create_pool(database.url, min_size=1, max_size=4)
            for room in {member.room for member in members}:
                stored = await pool.fetch(
                    "SELECT seq, client_id FROM messages WHERE room = $1 ORDER BY seq", room
                )
                assert [row["seq"] for row in stored] == list(range(1, len(stored) + 1))
                ours = {cid: seq for cid, (where, seq) in acked.items() if where == room}
                assert {row["client_id"]: row["seq"] for row in stored} == ours
                for member in (m for m in members if m.room == room):
                    await member.ensure_connected()
                    async with asyncio.timeout(30):
                        while len(set(member.seen)) < len(stored):
                            await asyncio.sleep(0.1)
                    assert sorted(member.seen) == list(range(1, len(stored) + 1)), (
                        f"{member.name} saw a message twice or missed one"
                    )
            await pool.close()

            # Presence is right again once a killed replica's leases have lapsed and been
            # reaped: both members of every room online, and nobody told the other had left.
            await asyncio.sleep(PRESENCE_LEASE_S + PRESENCE_REAP_S + 2)
            async with contextlib.aclosing(aioredis.from_url(redis_server.url)) as client:
                for room in {member.room for member in members}:
                    key = room_key(own.redis_namespace, UUID(room))
                    leases = await client.zrangebyscore(key, time.time(), "+inf")
                    online = {lease.decode().split("|")[0] for lease in leases}
                    assert online == {m.partner for m in members if m.room == room}, room
            for member in members:
                told = member.partner_online
                assert not told or told[-1], f"{member.name} was told its partner left"
        finally:
            sending = False
            for task in senders:
                task.cancel()
            for member in members:
                await member.close()
            for pair in consults:
                for one in pair:
                    await one.close()
            for hub in hubs:
                hub.stop()
            redis_server.stop()
            database.stop()

    # How long each fault kept each member from an acknowledged send: from the fault's start
    # to the member's first acknowledgement after it.
    recoveries: dict[str, list[float]] = {}
    for name, began in injected:
        recoveries.setdefault(name, []).extend(
            min(at for at in member.acked_at if at > began) - began for member in members
        )
    report = [f"{len(members)} members in {len(members) // 2} rooms, {ROUNDS} round(s):"]
    opened = sorted(one.media.opened for pair in consults for one in pair)
    lost = sum(vet.media.lost > 0 for vet, _ in consults)
    report.append(
        f"  {len(consults)} consults ({lost} told their media server was lost): video flowing"
        f" both ways {media_back_s:.1f} s after the chatting stopped; media connections per"
        f" member {opened[0]}-{opened[-1]}"
    )
    for name, waits in recoveries.items():
        report.append(
            f"  {name:20} recovery p50 {statistics.median(waits):5.2f} s,"
            f" p99 {percentile(waits, 0.99):5.2f} s, max {max(waits):5.2f} s"
        )
    print("\n".join(report))
