"""Who is in each consult's call, shared by every hub replica through Redis.

A call is a Redis hash `<prefix>:rtc:call:<consult>`, one field per user holding a `Member`:
role, name, whether the vet admitted them, whether their microphone and camera are on, and the
replica and Socket.IO sid that serve them,
so any replica can route an event to them. A member whose connection drops is marked `gone_at_ms`
and stays for the reconnect grace (RTC_RECONNECT_GRACE_S, 30 s by default); their departure is
scheduled in the sorted set `<prefix>:rtc:departures` (score: the deadline). Every replica
reaps due departures; whoever removes one from the set owns it, and the member leaves only if
they did not come back (`gone_at_ms` still set), so a departure is announced once, even if the
replica they dropped from has since stopped. The call's mode is a key of its own, set by the
first join and changed only by `switch_mode` (a p2p call moves to sfu when a recording starts).

Each replica's members are listed in the set `<prefix>:rtc:served:<replica>` (`consult|user`),
so that when the replica dies (its lease expires, signaling.leases) another can `orphan` them:
each one it still serves is marked gone as of the replica's last renewal and scheduled to
depart like a dropped connection.
"""

from __future__ import annotations

import time
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.redis_client import RedisClient
from domain.scheduling.consults import ParticipantRole
from signaling.modes import Mode

CALL_TTL_S = 12 * 3600  # a call nobody touched for this long is forgotten

# Mark a member gone only if `sid` still serves them (they may have rejoined elsewhere).
_MARK_GONE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local member = cjson.decode(raw)
if member.sid ~= ARGV[2] then return 0 end
member.gone_at_ms = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(member))
return 1
"""

# Mark a member gone if the replica ARGV[2] still serves them; keep an earlier gone_at_ms.
# Returns their gone_at_ms, or false if they are not in or are served elsewhere.
_ORPHAN = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local member = cjson.decode(raw)
if member.replica ~= ARGV[2] then return false end
if type(member.gone_at_ms) ~= 'number' then
  member.gone_at_ms = tonumber(ARGV[3])
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(member))
end
return tostring(member.gone_at_ms)
"""

# Set the microphone and camera of a member still served by connection ARGV[2].
_SET_MEDIA = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local member = cjson.decode(raw)
if member.sid ~= ARGV[2] then return 0 end
member.audio = ARGV[3] == '1'
member.video = ARGV[4] == '1'
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(member))
return 1
"""

# Undo a mark for a member still served by connection ARGV[2] (its replica outlived its lease).
_REVIVE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local member = cjson.decode(raw)
if member.sid ~= ARGV[2] or type(member.gone_at_ms) ~= 'number' then return 0 end
member.gone_at_ms = nil
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(member))
return 1
"""

# Change a call's mode from ARGV[1] to ARGV[2]; 1 if it changed, 0 if it was not ARGV[1].
_SWITCH_MODE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""

# The call's mode: ARGV[1] (kept ARGV[2] seconds) if it has none yet, else the one it has.
_MODE = """
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', tonumber(ARGV[2]))
return redis.call('GET', KEYS[1])
"""

# Take a member out; return them, or nil if they were not in.
_TAKE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
return raw
"""

# Remove a member whose grace ran out; return them, or nil if they came back.
_REAP = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local member = cjson.decode(raw)
local gone_at_ms = member.gone_at_ms
if type(gone_at_ms) ~= 'number' or gone_at_ms + tonumber(ARGV[2]) > tonumber(ARGV[3]) then
  return false
end
redis.call('HDEL', KEYS[1], ARGV[1])
return raw
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


class Member(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: UUID
    role: ParticipantRole
    name: str
    admitted: bool
    replica: str
    sid: str
    gone_at_ms: int | None = None  # unix ms (an integer survives Lua's cjson exactly)
    audio: bool = True  # their microphone is on (`media`)
    video: bool = True  # their camera is on

    def media(self, consult: UUID) -> dict[str, str | bool]:
        """The `media` event that tells others of their microphone and camera."""
        return {
            "consult_id": str(consult),
            "user_id": str(self.user_id),
            "audio": self.audio,
            "video": self.video,
        }

    def peer(self) -> dict[str, str]:
        """How the member appears in `peers` and `peer_joined`."""
        return {"user_id": str(self.user_id), "role": self.role.value}

    def encode(self) -> str:
        return self.model_dump_json(exclude_none=True)


class Calls:
    """The calls' shared state. One per replica; `reap_due` is driven by signaling.replica."""

    def __init__(self, redis: RedisClient, prefix: str, reconnect_grace_s: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._grace_ms = int(reconnect_grace_s * 1000)
        self._mark_gone = redis.register_script(_MARK_GONE)
        self._reap = redis.register_script(_REAP)
        self._orphan = redis.register_script(_ORPHAN)
        self._revive = redis.register_script(_REVIVE)
        self._switch_mode = redis.register_script(_SWITCH_MODE)
        self._set_media = redis.register_script(_SET_MEDIA)
        self._mode = redis.register_script(_MODE)
        self._take = redis.register_script(_TAKE)

    def _call_key(self, consult: UUID) -> str:
        return f"{self._prefix}:rtc:call:{consult}"

    def _mode_key(self, consult: UUID) -> str:
        return f"{self._prefix}:rtc:mode:{consult}"

    def _served_key(self, replica: str) -> str:
        return f"{self._prefix}:rtc:served:{replica}"

    @property
    def _departures_key(self) -> str:
        return f"{self._prefix}:rtc:departures"

    async def members(self, consult: UUID) -> dict[UUID, Member]:
        raw = await self._redis.hgetall(self._call_key(consult))
        members = (Member.model_validate_json(value) for value in raw.values())
        return {member.user_id: member for member in members}

    async def member(self, consult: UUID, user: UUID) -> Member | None:
        raw = await self._redis.hget(self._call_key(consult), str(user))
        return None if raw is None else Member.model_validate_json(raw)

    async def put(self, consult: UUID, member: Member) -> None:
        # Two slots, so two writes, the served set first: _ORPHAN skips an entry whose member is
        # absent or served elsewhere; the reverse could leave a member no served set lists.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sadd(self._served_key(member.replica), f"{consult}|{member.user_id}")
            pipe.expire(self._served_key(member.replica), CALL_TTL_S)
            await pipe.execute()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._call_key(consult), str(member.user_id), member.encode())
            pipe.expire(self._call_key(consult), CALL_TTL_S)
            await pipe.execute()

    async def set_media(self, consult: UUID, member: Member, *, audio: bool, video: bool) -> bool:
        """Store `member`'s microphone and camera; False if their connection no longer serves
        them."""
        flags = ["1" if audio else "0", "1" if video else "0"]
        updated = await self._set_media(
            keys=[self._call_key(consult)], args=[str(member.user_id), member.sid, *flags]
        )
        return bool(updated)

    async def mode(self, consult: UUID, proposed: Mode) -> Mode:
        """The call's mode: `proposed` if the call has none yet, else the one it has."""
        mode = await self._mode(keys=[self._mode_key(consult)], args=[proposed.value, CALL_TTL_S])
        return Mode(mode.decode() if isinstance(mode, bytes) else mode)

    async def switch_mode(self, consult: UUID, current: Mode, new: Mode) -> bool:
        """Move the call from mode `current` to `new`; False if it was not in `current`."""
        switched = await self._switch_mode(
            keys=[self._mode_key(consult)], args=[current.value, new.value, CALL_TTL_S]
        )
        return bool(switched)

    async def current_mode(self, consult: UUID) -> Mode | None:
        current = await self._redis.get(self._mode_key(consult))
        if current is None:
            return None
        return Mode(current.decode() if isinstance(current, bytes) else current)

    async def remove(self, consult: UUID, user: UUID) -> Member | None:
        """Take a member out at once (leave); None if they were not in."""
        if (raw := await self._take(keys=[self._call_key(consult)], args=[str(user)])) is None:
            return None
        member = Member.model_validate_json(raw)
        await self._unlist(consult, member)
        return member

    async def _unlist(self, consult: UUID, member: Member) -> None:
        await self._redis.srem(self._served_key(member.replica), f"{consult}|{member.user_id}")

    async def end_if_empty(self, consult: UUID) -> bool:
        """Forget the call's mode once nobody is in it; True if it was empty."""
        if await self._redis.hlen(self._call_key(consult)):
            return False
        await self._redis.delete(self._mode_key(consult))
        return True

    async def drop(self, consult: UUID, user: UUID, sid: str) -> bool:
        """The connection `sid` of a member dropped: start their grace; False if `sid` no
        longer serves them."""
        now_ms = _now_ms()
        marked = await self._mark_gone(
            keys=[self._call_key(consult)], args=[str(user), sid, now_ms]
        )
        if marked:
            deadline_ms = now_ms + self._grace_ms
            await self._redis.zadd(self._departures_key, {f"{consult}|{user}": deadline_ms})
        return bool(marked)

    async def reap_due(self) -> list[tuple[UUID, Member]]:
        """Remove every member whose grace has run out and who did not come back."""
        now_ms = _now_ms()
        due = await self._redis.zrangebyscore(self._departures_key, "-inf", now_ms)
        departed: list[tuple[UUID, Member]] = []
        for raw_entry in due:
            entry = raw_entry.decode() if isinstance(raw_entry, bytes) else str(raw_entry)
            if await self._redis.zrem(self._departures_key, entry) != 1:
                continue  # another replica took it
            consult_text, user = entry.split("|", 1)
            consult = UUID(consult_text)
            raw = await self._reap(
                keys=[self._call_key(consult)], args=[user, self._grace_ms, now_ms]
            )
            if raw:
                member = Member.model_validate_json(raw)
                await self._unlist(consult, member)
                departed.append((consult, member))
        return departed

    async def orphan(self, replica: str, last_seen_ms: int) -> int:
        """The replica `replica` is dead (last renewed its lease at `last_seen_ms`): each member
        it still serves is marked gone from then and scheduled to depart after the grace (at the
        next reaping if that has passed). Idempotent; returns how many it still served."""
        served = self._served_key(replica)
        orphaned = 0
        for raw_entry in await self._redis.smembers(served):
            entry = raw_entry.decode() if isinstance(raw_entry, bytes) else str(raw_entry)
            consult, user = entry.split("|", 1)
            gone_at = await self._orphan(
                keys=[self._call_key(UUID(consult))], args=[user, replica, last_seen_ms]
            )
            if gone_at:
                deadline_ms = int(gone_at) + self._grace_ms
                await self._redis.zadd(self._departures_key, {entry: deadline_ms})
                orphaned += 1
        await self._redis.delete(served)
        return orphaned

    async def revive(self, consult: UUID, user: UUID, sid: str) -> None:
        """Keep a member whose connection `sid` is alive although its replica was reaped."""
        if await self._revive(keys=[self._call_key(consult)], args=[str(user), sid]):
            member = await self.member(consult, user)
            if member is not None:
                await self._redis.sadd(self._served_key(member.replica), f"{consult}|{user}")
