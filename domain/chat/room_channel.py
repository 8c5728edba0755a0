"""A chat room's Redis channel and what travels on it: the hub replicas' fan-out tells each
other about the rooms they host there, and the API's outbox relay tells them of a member who
left over REST, so only the replicas hosting that room hear of it.

On the wire a publication is `<origin>|<room>|<json>`: a receiver skips its own and rooms it
does not host without parsing the JSON. The JSON names its kind (`k`), so a receiver never
guesses it from which keys are present.

Sharded pub/sub (SPUBLISH / SSUBSCRIBE) where the server has it (Redis 7, and always on a
Redis Cluster), classic PUBLISH / SUBSCRIBE before.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from redis.asyncio.cluster import RedisCluster

from domain.chat.conversations import LEFT_REASON, MEMBER_LEFT
from domain.redis_client import RedisClient

RELAY_ORIGIN = "outbox"  # the origin of what the API's relay publishes (no replica's id)


class Kind(enum.Enum):
    message = "m"  # a stored message, delivered in seq order
    event = "e"  # an event without a seq (edits, deletions, typing, receipts, presence)
    removal = "r"  # a user's connections are taken out of the room


@dataclass(frozen=True, slots=True)
class Publication:
    room: UUID
    kind: Kind
    event: str
    data: dict[str, Any]
    seq: int = 0  # a message's
    user: UUID | None = None  # a removal's

    def encode(self, origin: str) -> str:
        """The wire form, sent by replica `origin`."""
        body: dict[str, Any] = {"k": self.kind.value, "e": self.event, "d": self.data}
        if self.kind is Kind.message:
            body["s"] = self.seq
        elif self.kind is Kind.removal:
            body["u"] = str(self.user)
        return f"{origin}|{self.room}|{json.dumps(body, separators=(',', ':'))}"

    @classmethod
    def decode(cls, room: UUID, body: bytes) -> Publication:
        """The publication whose JSON is `body` (see `header`), about `room`."""
        fields = json.loads(body)
        kind = Kind(fields["k"])
        return cls(
            room,
            kind,
            fields["e"],
            fields["d"],
            seq=fields["s"] if kind is Kind.message else 0,
            user=UUID(fields["u"]) if kind is Kind.removal else None,
        )


def header(raw: bytes) -> tuple[bytes, bytes, bytes]:
    """A publication's origin replica, room id and JSON body, none of them parsed."""
    origin, room, body = raw.split(b"|", 2)
    return origin, room, body


def channels_prefix(redis_namespace: str) -> str:
    """What the hub's room channels are named under (`room_channel`)."""
    return f"{redis_namespace}:chat:fanout"


def room_channel(prefix: str, room: UUID) -> str:
    return f"{prefix}:{room}"


async def sharded_pubsub(redis: RedisClient) -> bool:
    """Whether the server has sharded pub/sub (Redis 7 on)."""
    if isinstance(redis, RedisCluster):
        return True
    version = str((await redis.info("server"))["redis_version"])
    return int(version.split(".", 1)[0]) >= 7


async def relay_to_room(
    redis: RedisClient, redis_namespace: str, topic: str, payload: dict[str, Any]
) -> None:
    """Hand a domain event that concerns a room's live members to the replicas hosting it:
    a member who left is taken out of the room (the others ignore what is not theirs)."""
    if topic != MEMBER_LEFT:
        return
    room, user = UUID(payload["conversation_id"]), UUID(payload["user_id"])
    removal = Publication(room, Kind.removal, "removed", {"reason": LEFT_REASON}, user=user)
    command = "SPUBLISH" if await sharded_pubsub(redis) else "PUBLISH"
    channel = room_channel(channels_prefix(redis_namespace), room)
    await redis.execute_command(command, channel, removal.encode(RELAY_ORIGIN))
