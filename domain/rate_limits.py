"""Attempt budgets over sliding windows in Redis, shared by every API replica.

A budget is a sorted set of attempt times under its key, so its limit holds over any window
(fixed windows would let twice the budget through across a window's edge). A refused attempt
is not recorded: a key never holds more than its limit, however hard a client pushes.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from uuid import uuid4

from domain.errors import RateLimited
from domain.redis_client import RedisClient

# KEYS: the budgets' keys; ARGV: now, the attempt's member, then (limit, window) per key.
# Returns {0, 0} when the attempt was recorded in every budget, else {the 1-based index of the
# first full budget, the seconds until the attempt would fit in all of them}.
_SPEND = """
local now = tonumber(ARGV[1])
local full, wait = 0, 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local freed = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, 1, math.ceil(tonumber(freed[2]) + window - now))
    if full == 0 then full = i end
  end
end
if full > 0 then return {full, wait} end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('EXPIRE', key, tonumber(ARGV[2 + 2 * i]))
end
return {0, 0}
"""


@dataclass(frozen=True)
class Budget:
    """At most `limit` attempts by one subject (`name` says whose) in any `window_s`."""

    name: str
    limit: int
    window_s: int
    refusal: str


@dataclass(frozen=True)
class Attempt:
    """An attempt recorded in its budgets; refunding it gives its place back."""

    member: str
    budgets: tuple[Budget, ...]


def address_subject(ip: str) -> str:
    """Whose budget an address spends: IPv6 clients by their /64, since one host is usually
    given a whole /64 and could otherwise take a fresh budget per address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimits:
    """The budgets of one Redis namespace."""

    def __init__(self, redis: RedisClient, namespace: str) -> None:
        self._redis = redis
        self._namespace = namespace
        self._spend = redis.register_script(_SPEND)

    def _key(self, budget: Budget) -> str:
        return f"{self._namespace}:limit:{budget.name}"

    async def spend(self, *budgets: Budget, now: float | None = None) -> Attempt:
        """Record one attempt in every budget at once, or raise RateLimited (with the first
        refused budget's message) and record nothing."""
        now = time.time() if now is None else now
        member = f"{now}:{uuid4().hex}"
        args: list[float | str | int] = [now, member]
        for budget in budgets:
            args += [budget.limit, budget.window_s]
        full, wait = await self._spend(keys=[self._key(b) for b in budgets], args=args)
        if full:
            raise RateLimited(budgets[int(full) - 1].refusal, int(wait))
        return Attempt(member, budgets)

    async def refund(self, attempt: Attempt) -> None:
        """Take `attempt` back out of its budgets."""
        # Not a transaction: the keys may lie in different cluster slots, and each ZREM stands
        # alone; a refund that reaches only some budgets leaves the attempt counted in the others
        # until their window slides past it, which errs toward limiting, never toward a bypass.
        async with self._redis.pipeline(transaction=False) as pipe:
            for budget in attempt.budgets:
                pipe.zrem(self._key(budget), attempt.member)
            await pipe.execute()
