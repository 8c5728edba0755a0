"""Hub replicas in the test process sharing PostgreSQL and Redis, and what Redis and the
fan-out's metrics show of their room channels."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from domain.chat.conversations import create_conversation
from domain.chat.room_channel import Kind, Publication, header
from domain.identity import Role
from pawhub.settings import Settings
from realtime.channel_flavours import SHARDED, detect_flavour
from realtime.fanout import RoomFanout
from tests.conftest import Member, start_hub
from tests.recording_client import ChatClient, RecordingClient

Room = tuple[UUID, Member, Member]


@contextlib.asynccontextmanager
async def replicas(settings: Settings, count: int = 2) -> AsyncIterator[list[str]]:
    """`count` hubs without the send rate limit; their URLs."""
    unlimited = settings.model_copy(update={"chat_rate_limit": 0})
    runners = []
    try:
        urls = []
        for _ in range(count):
            runner, url = await start_hub(unlimited)
            runners.append(runner)
            urls.append(url)
        yield urls
    finally:
        for runner in runners:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def clients() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Connects recording clients (ChatClient unless told), closing them all at the end."""
    opened: list[RecordingClient] = []

    async def connect(url: str, token: str, kind: type[RecordingClient] = ChatClient) -> Any:
        client = await kind.connect(url, token)
        opened.append(client)
        return client

    try:
        yield connect
    finally:
        for client in opened:
            with contextlib.suppress(Exception):
                await client.close()


async def new_room(pool: asyncpg.Pool, make_user: Any) -> Room:
    owner = await make_user(Role.owner, "Olive Owner")
    vet = await make_user(Role.vet, "Dr. Vera Vet")
    async with pool.acquire() as conn:
        conversation = await create_conversation(conn, owner[0].id, [vet[0].id], "Rex")
    return conversation.id, owner, vet


def channel_of(settings: Settings, room: UUID) -> str:
    """The room's channel, as pawhub.hub names it."""
    return f"{settings.redis_namespace}:chat:fanout:{room}"


async def subscribers(redis: aioredis.Redis, channel: str) -> int:
    """How many connections Redis delivers the channel's publications to."""
    if await detect_flavour(redis) is SHARDED:
        [(_, count)] = await redis.pubsub_shardnumsub(channel)
    else:
        [(_, count)] = await redis.pubsub_numsub(channel)
    return int(count)


async def channels_like(redis: aioredis.Redis, pattern: str) -> list[str]:
    """The channels with a subscriber whose name matches `pattern` (PUBSUB [SHARD]CHANNELS)."""
    if await detect_flavour(redis) is SHARDED:
        names = await redis.pubsub_shardchannels(pattern)
    else:
        names = await redis.pubsub_channels(pattern)
    return sorted(name.decode() if isinstance(name, bytes) else name for name in names)


def metric(name: str, **labels: str) -> float:
    """A metric of this process (every hub in it adds to the same ones)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def received(fate: str) -> float:
    return metric("pawhub_fanout_publications_received_total", fate=fate)


@dataclass(frozen=True)
class Heard:
    """A publication a replica received from Redis: whose it was and of which room."""

    replica: bytes
    origin: bytes
    room: UUID
    kind: Kind


class Hearing:
    """What every replica of this process receives from Redis, room by room. The fan-out's
    metrics add up every hub of the process, including ones other tests left winding down."""

    def __init__(self) -> None:
        self.log: list[Heard] = []

    def own_messages(self, room: UUID) -> int:
        """Messages of the room heard back by the replica that sent them."""
        return sum(
            1
            for heard in self.log
            if heard.room == room and heard.replica == heard.origin and heard.kind is Kind.message
        )

    def foreign(self, room: UUID) -> int:
        """Publications of the room heard by a replica other than the sender."""
        return sum(1 for heard in self.log if heard.room == room and heard.replica != heard.origin)

    def events(self, room: UUID) -> int:
        """Publications of the room without a seq (presence, typing, receipts) heard by any
        replica."""
        return sum(1 for heard in self.log if heard.room == room and heard.kind is Kind.event)

    def record(self) -> Callable[[RoomFanout, bytes], Awaitable[None]]:
        """A stand-in for RoomFanout._receive that logs and then receives; set it before the
        replicas start (each binds its own at construction)."""
        receive = RoomFanout._receive

        async def recording(fanout: RoomFanout, raw: bytes) -> None:
            origin, room_id, body = header(raw)
            room = UUID(room_id.decode())
            kind = Publication.decode(room, body).kind
            self.log.append(Heard(fanout.replica_id.encode(), origin, room, kind))
            await receive(fanout, raw)

        return recording


async def send(client: ChatClient, room: UUID, client_id: str, body: str = "hi") -> int:
    """Send a message; its seq once acknowledged."""
    ack = await client.call("send", {"room": str(room), "client_id": client_id, "body": body})
    assert ack["ok"], ack
    seq: int = ack["message"]["seq"]
    return seq
