"""Presence leases against real Redis: renewal keeps live replicas' users online, reaping takes
a dead replica's users offline, each announced once, by one replica."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from pawhub.resources import open_redis
from realtime import presence as presence_module
from realtime.presence import Presence, expiries_key, room_key
from realtime.redis_text import text
from tests.redis_cluster import RedisClusterProcesses


@pytest.fixture
def short_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presence_module, "LEASE_S", 1.0)
    monkeypatch.setattr(presence_module, "RENEW_EVERY_S", 0.2)
    monkeypatch.setattr(presence_module, "REAP_EVERY_S", 0.2)
    monkeypatch.setattr(presence_module, "_CHUNK", 7)  # several script calls per round
    monkeypatch.setattr(presence_module, "BUCKETS", 3)  # and several per bucket


def replica(redis: aioredis.Redis, prefix: str) -> tuple[Presence, list[tuple[UUID, UUID]]]:
    departures: list[tuple[UUID, UUID]] = []

    async def went_offline(room: UUID, user: UUID) -> None:
        departures.append((room, user))

    return Presence(redis, prefix, uuid4().hex, went_offline), departures


async def kill(replica: Presence) -> None:
    """Stop renewing and reaping without giving the leases back, as a SIGKILL would."""
    for loop in replica._loops:
        await loop.stop()


async def test_a_dead_replicas_users_go_offline_once_and_live_ones_stay(
    redis: aioredis.Redis, short_leases: None
) -> None:
    prefix = f"presence-test-{uuid4().hex[:8]}"
    (alive, alive_saw), (doomed, doomed_saw) = replica(redis, prefix), replica(redis, prefix)
    rooms = [uuid4() for _ in range(20)]
    shared_user, doomed_users = uuid4(), [uuid4() for _ in rooms]
    for number, room in enumerate(rooms):
        await alive.arrive(room, shared_user, f"a{number}")
        await doomed.arrive(room, shared_user, f"d{number}")  # the same user's second device
        await doomed.arrive(room, doomed_users[number], f"e{number}")
    await alive.start()
    await doomed.start()
    await kill(doomed)

    await asyncio.sleep(3.0)  # three leases long: only renewal keeps anyone online

    assert sorted(alive_saw) == sorted(zip(rooms, doomed_users, strict=True))
    assert doomed_saw == []
    for room in rooms:
        leases = await redis.zrange(room_key(prefix, room), 0, -1)
        # The dead replica's leases are gone, the live one's renewed.
        assert [text(lease) for lease in leases] == [f"{shared_user}|{alive._replica_id}"]
    await alive.stop()  # a clean stop gives its leases back at once
    for room in rooms:
        assert await redis.zcard(room_key(prefix, room)) == 0


async def test_a_reaping_round_reads_only_the_rooms_whose_leases_ran_out(
    redis: aioredis.Redis, short_leases: None
) -> None:
    """Every replica reaps every second: it asks for the rooms past their earliest lease
    expiry, more than a chunk of them in a bucket, not for every room of the deployment."""
    prefix = f"presence-test-{uuid4().hex[:8]}"
    (alive, alive_saw), (doomed, _) = replica(redis, prefix), replica(redis, prefix)
    lapsed = [uuid4() for _ in range(3 * presence_module._CHUNK + 1)]  # a bucket holds > a chunk
    lapsed_users = [uuid4() for _ in lapsed]
    pairs = zip(lapsed, lapsed_users, strict=True)
    await asyncio.gather(*(doomed.arrive(room, user, "d") for room, user in pairs))
    await asyncio.sleep(presence_module.LEASE_S + 0.1)
    live = [uuid4() for _ in range(30)]
    await asyncio.gather(*(alive.arrive(room, uuid4(), "a") for room in live))
    calls: list[list[str]] = []
    alive._reap_script = _noting_keys(alive._reap_script, calls)

    await alive._reap()

    reaped = {key for keys in calls for key in keys if not key.endswith(":expiries")}
    assert reaped == {room_key(prefix, room) for room in lapsed}
    assert sorted(alive_saw) == sorted(zip(lapsed, lapsed_users, strict=True))  # in one round
    expiring = [
        UUID(text(room))
        for number in range(presence_module.BUCKETS)
        for room in await redis.zrange(expiries_key(prefix, number), 0, -1)
    ]
    assert sorted(expiring) == sorted(live)


async def test_only_a_users_first_arrival_brings_them_online(redis: aioredis.Redis) -> None:
    """A second device, or a connection moving to another replica while the first replica's
    lease still runs (a reconnect storm), brings nobody online: nobody is told again."""
    prefix = f"presence-test-{uuid4().hex[:8]}"
    (first, _), (second, _) = replica(redis, prefix), replica(redis, prefix)
    room, user, other = uuid4(), uuid4(), uuid4()

    arrival = await first.arrive(room, user, "phone")
    assert arrival.came_online and arrival.online == [str(user)]
    assert not arrival.worth_announcing  # nobody else is online to be told
    assert not (await first.arrive(room, user, "laptop")).came_online
    moved = await second.arrive(room, user, "phone again")
    assert not moved.came_online and moved.online == [str(user)]
    joined = await second.arrive(room, other, "other")
    assert joined.came_online and joined.online == sorted([str(user), str(other)])
    assert joined.worth_announcing

    assert not await first.depart(room, user, "phone")  # the laptop is still here
    assert not await first.depart(room, user, "laptop")  # and the moved connection
    assert await second.depart(room, user, "phone again")
    assert (await first.arrive(room, user, "back")).came_online


async def test_concurrent_arrivals_each_see_the_room_as_recorded(redis: aioredis.Redis) -> None:
    """Arrivals made at once share script calls; each still learns who was online before it
    and comes online once."""
    prefix = f"presence-test-{uuid4().hex[:8]}"
    presence, _ = replica(redis, prefix)
    rooms = [uuid4() for _ in range(3)]
    users = [uuid4() for _ in range(300)]

    arrivals = await asyncio.gather(
        *(presence.arrive(rooms[n % 3], user, f"s{n}") for n, user in enumerate(users))
    )

    assert all(arrival.came_online for arrival in arrivals)
    for n, arrival in enumerate(arrivals):
        assert str(users[n]) in arrival.online
        assert set(arrival.online) <= {str(user) for user in users[n % 3 :: 3]}
    for number, room in enumerate(rooms):
        assert await redis.zcard(room_key(prefix, room)) == 100
        last = await presence.arrive(room, users[number], "again")
        assert sorted(last.online) == sorted(str(user) for user in users[number::3])


async def test_a_handed_over_lease_outlives_its_replica_and_the_move_tells_nobody(
    redis: aioredis.Redis,
) -> None:
    """A draining replica hands its users over: their leases stay (the stop gives back only
    the others), and the user arriving on another replica did not come online."""
    prefix = f"presence-test-{uuid4().hex[:8]}"
    (draining, _), (survivor, _) = replica(redis, prefix), replica(redis, prefix)
    room, moving, leaving = uuid4(), uuid4(), uuid4()
    await draining.arrive(room, moving, "m")
    await draining.arrive(room, leaving, "l")

    draining.hand_over(room, moving, "m")
    await draining.stop()

    leases = await redis.zrange(room_key(prefix, room), 0, -1)
    assert [text(lease) for lease in leases] == [f"{moving}|{draining._replica_id}"]
    assert not (await survivor.arrive(room, moving, "m again")).came_online


async def test_a_departure_racing_an_arrival_of_the_same_user_keeps_the_lease(
    redis: aioredis.Redis,
) -> None:
    """One connection of a user leaves while another of the same user arrives on the same
    replica, and the arrival's lease lands before the departure removes it (their lease has one
    name per replica): the user is still here, so the lease stands and nobody goes offline."""
    prefix = f"presence-test-{uuid4().hex[:8]}"
    presence, _ = replica(redis, prefix)
    room, user = uuid4(), uuid4()
    await presence.arrive(room, user, "old")
    removing, release = asyncio.Event(), asyncio.Event()
    real_depart = presence._depart_script

    async def late_depart(**given: Any) -> Any:
        removing.set()
        await release.wait()
        return await real_depart(**given)

    presence._depart_script = late_depart  # type: ignore[assignment]
    departing = asyncio.create_task(presence.depart(room, user, "old"))
    await removing.wait()
    await presence.arrive(room, user, "new")
    release.set()

    assert await departing is False
    leases = await redis.zrange(room_key(prefix, room), 0, -1, withscores=True)
    assert [text(lease) for lease, _ in leases] == [f"{user}|{presence._replica_id}"]
    # and the reaper would find it, should the replica die now
    expiries = expiries_key(prefix, presence_module.bucket(room))
    assert await redis.zscore(expiries, str(room)) == leases[0][1]


async def test_a_connection_that_leaves_before_its_arrival_is_recorded_leaves_no_lease(
    redis: aioredis.Redis,
) -> None:
    """Its departure found no lease to give back: one written after it would outlive every
    connection and, while it ran, hide the user's next arrival from the room."""
    prefix = f"presence-test-{uuid4().hex[:8]}"
    presence, _ = replica(redis, prefix)
    room, user = uuid4(), uuid4()
    arriving = asyncio.create_task(presence.arrive(room, user, "s"))
    await asyncio.sleep(0)  # its arrival waits for others to share the script call
    assert await presence.depart(room, user, "s")
    await arriving
    assert await redis.zcard(room_key(prefix, room)) == 0


async def test_on_a_cluster_a_script_call_is_given_every_key_it_writes_all_in_one_slot(
    redis_cluster: RedisClusterProcesses,
) -> None:
    """Redis Cluster runs a script only if every key it touches is in its KEYS and in one hash
    slot: each key names its room's bucket as hash tag, and each call covers one bucket, while
    the buckets spread over the slots (and the cluster's nodes, which refuse anything else)."""
    cluster = open_redis(redis_cluster.url, cluster=True)
    prefix = f"presence-test-{uuid4().hex[:8]}"
    presence, went = replica(cluster, prefix)
    calls: list[list[str]] = []
    for name in ("_arrive_script", "_renew_script", "_reap_script", "_depart_script"):
        setattr(presence, name, _noting_keys(getattr(presence, name), calls))
    rooms = [uuid4() for _ in range(40)]
    users = [uuid4() for _ in rooms]
    try:
        arrivals = await asyncio.gather(
            *(presence.arrive(room, user, "s") for room, user in zip(rooms, users, strict=True))
        )
        assert all(arrival.came_online for arrival in arrivals)
        await presence._renew()
        await presence._reap()
        written = {text(key) async for key in cluster.scan_iter(f"{prefix}:*")}
        for room, user in zip(rooms, users, strict=True):  # left: the reaper frees the rooms
            assert await presence.depart(room, user, "s")
        left = {text(key) async for key in cluster.scan_iter(f"{prefix}:*")}
        assert left == set()  # leases given back, and their rooms' expiries with them
    finally:
        await cluster.aclose()

    tag = re.compile(rf"{re.escape(prefix)}:presence:\{{(\d+)\}}:(expiries|.*)")
    for key in written:
        match = tag.fullmatch(key)
        assert match, key
        bucket, name = match.groups()
        assert name == "expiries" or int(bucket) == UUID(name).int % presence_module.BUCKETS, key
    assert len(written) == len(rooms) + len({room.int % presence_module.BUCKETS for room in rooms})
    assert written <= {key for keys in calls for key in keys}
    slots = [{key_slot(key.encode()) for key in keys} for keys in calls]
    assert all(len(call_slots) == 1 for call_slots in slots)
    assert len(set.union(*slots)) > 1
    assert went == []


async def test_on_one_redis_a_batch_of_arrivals_is_one_script_call(redis: aioredis.Redis) -> None:
    presence, _ = replica(redis, f"presence-test-{uuid4().hex[:8]}")
    calls: list[list[str]] = []
    presence._arrive_script = _noting_keys(presence._arrive_script, calls)
    rooms = [uuid4() for _ in range(40)]
    await _recorded(presence, [(room, str(uuid4())) for room in rooms])
    assert len(calls) == 1 and len(calls[0]) == 2 * len(rooms)


async def test_an_arrival_redis_could_not_record_is_announced(redis: aioredis.Redis) -> None:
    """Without Redis's answer the replica cannot tell whether anyone elsewhere is online."""
    presence, _ = replica(redis, f"presence-test-{uuid4().hex[:8]}")

    async def unreachable(**_: Any) -> Any:
        raise ConnectionError("Redis is away")

    presence._arrive_script = unreachable  # type: ignore[assignment]
    arrival = await presence.arrive(uuid4(), uuid4(), "s")
    assert arrival.came_online and arrival.worth_announcing


async def test_an_arrival_is_told_only_of_the_leases_of_other_replicas(
    redis: aioredis.Redis,
) -> None:
    """A replica knows its own users; Redis answers with the others' (a room of 500 filling up
    on one replica is answered with none)."""
    prefix = f"presence-test-{uuid4().hex[:8]}"
    (first, _), (second, _) = replica(redis, prefix), replica(redis, prefix)
    room, ann, bea, cy = uuid4(), str(uuid4()), str(uuid4()), str(uuid4())
    assert await _recorded(first, [(room, ann)]) == [set()]
    assert await _recorded(first, [(room, bea)]) == [set()]
    assert await _recorded(second, [(room, cy), (room, cy)]) == [{ann, bea}] * 2
    assert await _recorded(first, [(uuid4(), ann), (room, ann)]) == [set(), {cy}]


async def _recorded(presence: Presence, pairs: list[tuple[UUID, str]]) -> Sequence[set[str]]:
    """A batch of arrivals recorded, each of a connection here (as `arrive` leaves it)."""
    for room, user in pairs:
        presence._local[room][user].add(f"sid-{user}")
    return await presence._record_arrivals(pairs)


def _noting_keys(script: Any, calls: list[list[str]]) -> Any:
    """The script, noting the keys of each call."""

    async def call(*, keys: list[str], args: list[Any]) -> Any:
        calls.append(keys)
        return await script(keys=keys, args=args)

    return call


async def test_a_burst_of_departures_past_the_redis_pool_is_recorded_in_full(
    redis: aioredis.Redis, redis_url: str
) -> None:
    """Hundreds of clients leaving at once (a drain, a network blip) each give their lease
    back: the hub's Redis client waits for a free connection rather than failing the rest."""
    hubs_redis = open_redis(redis_url)
    prefix = f"presence-test-{uuid4().hex[:8]}"
    departing, _ = replica(hubs_redis, prefix)
    room, users = uuid4(), [uuid4() for _ in range(400)]
    try:
        await asyncio.gather(*(departing.arrive(room, user, f"sid-{user}") for user in users))
        assert await redis.zcard(room_key(prefix, room)) == len(users)
        await asyncio.gather(*(departing.depart(room, user, f"sid-{user}") for user in users))
        assert await redis.zcard(room_key(prefix, room)) == 0
    finally:
        await departing.stop()
        await hubs_redis.aclose()
