"""Presence across replicas, with leases so that a dead replica's users go offline.

Each replica holds a lease per (room, user) it serves: a member `user|replica` of the room's
sorted set, scored with the lease's expiry, renewed every few seconds. A user is online in a room
while any lease of theirs is live. A reaper on every replica removes expired leases; whichever
replica's ZREM removes the last lease of a user announces that user offline, so a replica that
dies takes its users offline within `LEASE_S` + `REAP_EVERY_S` seconds.

Rooms fall into `BUCKETS` buckets, each with its rooms that have leases scored by their earliest
lease expiry (the reaper asks for the rooms past it), and every key of a bucket carries the
bucket as its hash tag. A script call is given every key it touches and, on Redis Cluster,
covers one bucket (one hash slot), so the same scripts run on both (`realtime.presence_scripts`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from redis.asyncio.cluster import RedisCluster

from domain.batching import JOIN_LINGER_S, GroupCommit
from domain.redis_client import RedisClient
from realtime import presence_scripts as scripts
from realtime.background import every
from realtime.redis_text import text

log = logging.getLogger(__name__)
T = TypeVar("T")

LEASE_S = 20.0
RENEW_EVERY_S = 5.0
# A round asks Redis only for the rooms whose leases ran out (~2 ms of CPU), so it can run often.
REAP_EVERY_S = 1.0
_CHUNK = 500  # rooms (reaping) or leases (renewing) per script call
# One bucket would put all presence on one node of a cluster; 64 spread it over any likely
# cluster while a reaping round (a ZRANGEBYSCORE per bucket) stays a few dozen commands.
BUCKETS = 64


def bucket(room: UUID) -> int:
    return room.int % BUCKETS


def expiries_key(prefix: str, bucket: int) -> str:
    return f"{prefix}:presence:{{{bucket}}}:expiries"


def room_key(prefix: str, room: UUID) -> str:
    return f"{prefix}:presence:{{{bucket(room)}}}:{room}"


WentOffline = Callable[[UUID, UUID], Awaitable[None]]


# A room and a user: the user's id as text, as Redis and a join's `online` hold it.
Pair = tuple[UUID, str]


def _by_bucket(pairs: Iterable[Pair]) -> list[list[Pair]]:
    grouped: dict[int, list[Pair]] = defaultdict(list)
    for room, user in pairs:
        grouped[bucket(room)].append((room, user))
    return list(grouped.values())


def _chunks(items: list[T]) -> list[list[T]]:
    return [items[start : start + _CHUNK] for start in range(0, len(items), _CHUNK)]


def _pair_args(pairs: list[Pair]) -> list[str]:
    return [part for room, user in pairs for part in (str(room), user)]


@dataclass(frozen=True)
class Arrival:
    came_online: bool  # nobody could see the user online in the room before
    online: list[str]  # the room's online users, the arriving one included
    answered: bool = True  # Redis told who is online elsewhere (else `online` is this replica's)

    @property
    def worth_announcing(self) -> bool:
        """Came online, and someone else may be online (on any replica) to be told."""
        return self.came_online and (len(self.online) > 1 or not self.answered)


class Presence:
    def __init__(
        self, redis: RedisClient, prefix: str, replica_id: str, went_offline: WentOffline
    ) -> None:
        self._redis = redis
        self._one_slot_per_call = isinstance(redis, RedisCluster)
        self._prefix = prefix
        self._replica_id = replica_id
        self._went_offline = went_offline
        # room -> user (as text) -> this replica's connections of that user in that room
        self._local: dict[UUID, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self._loops = (
            every(RENEW_EVERY_S, self._renew, "presence renewal"),
            every(REAP_EVERY_S, self._reap, "presence reaping"),
        )
        self._renew_script = redis.register_script(scripts.RENEW)
        self._reap_script = redis.register_script(scripts.REAP)
        self._arrive_script = redis.register_script(scripts.ARRIVE)
        self._depart_script = redis.register_script(scripts.DEPART)
        self._arrivals: GroupCommit[Pair, set[str]] = GroupCommit(
            self._record_arrivals, writers=1, linger_s=JOIN_LINGER_S
        )

    def _room_key(self, room: UUID) -> str:
        return room_key(self._prefix, room)

    def _keys(self, rooms: Sequence[UUID]) -> list[str]:
        """A script call's keys: for each room, its bucket's expiries and its own key."""
        keys = ((expiries_key(self._prefix, bucket(room)), self._room_key(room)) for room in rooms)
        return [key for pair in keys for key in pair]

    def _calls(self, pairs: list[Pair]) -> list[list[Pair]]:
        """The pairs each script call covers: a bucket's (one hash slot) on a cluster, all of
        them on one Redis (a call per bucket cost 10 % of the connects a second)."""
        return _by_bucket(pairs) if self._one_slot_per_call else [pairs] if pairs else []

    def _lease(self, user: str) -> str:
        return f"{user}|{self._replica_id}"

    async def start(self) -> None:
        for loop in self._loops:
            loop.start()

    async def stop(self) -> None:
        for loop in self._loops:
            await loop.stop()
        # A replica that stops cleanly gives its leases back at once.
        for room, user in self._local_pairs():
            with contextlib.suppress(Exception):
                await self._redis.zrem(self._room_key(room), self._lease(user))

    def _local_pairs(self) -> list[Pair]:
        return [(room, user) for room, users in self._local.items() for user in users]

    async def arrive(self, room: UUID, user: UUID, sid: str) -> Arrival:
        """Lease the user's presence in the room from this replica. A user who already was
        online there (another device, or a connection that moved here from a dead replica
        whose lease still runs) did not come online: nobody is told again."""
        user_text = str(user)
        was_here = bool(self._local[room].get(user_text))
        self._local[room][user_text].add(sid)
        answered = True
        try:
            live = await self._arrivals.submit((room, user_text))
        except Exception as exc:  # presence is best effort while Redis is away
            log.warning("presence arrive not recorded: %s", exc)
            live, answered = set(), False
        here = self._local.get(room, {}).keys()
        return Arrival(not was_here and user_text not in live, sorted(live | here), answered)

    async def _record_arrivals(self, pairs: list[Pair]) -> Sequence[set[str]]:
        """The users live in each pair's room on other replicas before this batch, per pair. A
        user who left the room here while the batch waited is not leased: the departure found
        no lease to give back, and one written now would outlive every connection."""
        now = time.time()
        staying = [(room, user) for room, user in pairs if user in self._local.get(room, ())]
        # One call after another (a cluster's buckets): redis-py 8.1's cluster client can
        # write on a connection another task is still opening when many start at once.
        replies = [
            await self._arrive_script(
                keys=self._keys([room for room, _ in group]),
                args=[self._replica_id, now, now + LEASE_S, *_pair_args(group)],
            )
            for group in self._calls(staying)
        ]
        live = {
            text(room): {text(user) for user in users}
            for reply in replies
            for room, users in zip(reply[::2], reply[1::2], strict=True)
        }
        return [live.get(str(room), set()) for room, _ in pairs]

    async def depart(self, room: UUID, user: UUID, sid: str) -> bool:
        """Forget one connection; True when the user is now offline in the room everywhere."""
        user_text = str(user)
        if not self._forget(room, user_text, sid):
            return False
        try:
            gone = await self._depart_script(
                keys=self._keys([room]),
                args=[self._lease(user_text), user_text, time.time(), str(room)],
            )
            if user_text in self._local.get(room, ()):  # back here meanwhile: its lease stands
                await self._renew_script(
                    keys=self._keys([room]),
                    args=[self._replica_id, time.time() + LEASE_S, str(room), user_text],
                )
                return False
            return bool(gone)
        except Exception as exc:
            log.warning("presence depart not recorded: %s", exc)
            return True

    async def online_now(self, pairs: Sequence[tuple[UUID, UUID]]) -> list[bool]:
        """Whether each user has a live lease in the room now, on any replica."""
        rooms = list(dict.fromkeys(room for room, _ in pairs))
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            for room in rooms:
                pipe.zrangebyscore(self._room_key(room), now, "+inf")
            answers: list[list[bytes]] = await pipe.execute()
        live = {
            room: {text(lease).split("|", 1)[0] for lease in leases}
            for room, leases in zip(rooms, answers, strict=True)
        }
        return [str(user) in live[room] for room, user in pairs]

    def hand_over(self, room: UUID, user: UUID, sid: str) -> None:
        """Forget a connection that is moving to another replica (this one drains) without
        giving its lease back: it lapses within LEASE_S unless the user arrives elsewhere, so
        the room is not told the user left and came back; one who never returns is reaped."""
        self._forget(room, str(user), sid)

    def _forget(self, room: UUID, user: str, sid: str) -> bool:
        """Forget one connection here; True when it was the user's last here in the room."""
        users = self._local.get(room)
        sids = users.get(user) if users is not None else None
        if users is None or sids is None:
            return False
        sids.discard(sid)
        if sids:
            return False
        del users[user]
        if not users:
            del self._local[room]
        return True

    async def _renew(self) -> None:
        # One script call per chunk, one after another: thousands of leases at once cost the
        # event loop ~100 ms of command packing, which every client saw as latency.
        expiry = time.time() + LEASE_S
        for group in self._calls(self._local_pairs()):
            for chunk in _chunks(group):
                await self._renew_script(
                    keys=self._keys([room for room, _ in chunk]),
                    args=[self._replica_id, expiry, *_pair_args(chunk)],
                )

    async def _reap(self) -> None:
        """Only the rooms with a lease past its expiry, asked of every bucket in one pipeline: a
        round used to read every room of the deployment on every replica (~100 ms of CPU per 5,000
        rooms, which it did every 5 s: `bench.chat.reaping`)."""
        now = time.time()
        buckets = list(range(BUCKETS))
        while buckets:
            async with self._redis.pipeline(transaction=False) as pipe:
                for number in buckets:
                    key = expiries_key(self._prefix, number)
                    pipe.zrangebyscore(key, "-inf", now, start=0, num=_CHUNK)
                answers: list[list[bytes]] = await pipe.execute()
            for due in answers:
                if due:
                    await self._reap_rooms([UUID(text(room)) for room in due], now)
            # A reaped room's score moves past `now` (or it goes): a full answer asks again.
            buckets = [n for n, due in zip(buckets, answers, strict=True) if len(due) == _CHUNK]

    async def _reap_rooms(self, rooms: list[UUID], now: float) -> None:
        gone = await self._reap_script(keys=self._keys(rooms), args=[now, *map(str, rooms)])
        for raw_room, raw_user in zip(gone[::2], gone[1::2], strict=True):
            room, user = UUID(text(raw_room)), text(raw_user)
            if user not in self._local.get(room, ()):
                await self._went_offline(room, UUID(user))
