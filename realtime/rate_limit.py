"""Per-user send rate limits: a token bucket in Redis shared by every replica.

A user may send `limit` messages in a burst, refilled at `limit` per `window_s`. While Redis is
unreachable each replica falls back to its own in-memory bucket, so chat keeps working.
"""

from __future__ import annotations

import logging
import time
from uuid import UUID

from domain.redis_client import RedisClient

log = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV: capacity, refill per second, now (s). Returns 1 when a token was taken.
_TAKE_TOKEN = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local taken = 0
if tokens >= 1 then tokens = tokens - 1; taken = 1 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return taken
"""


class SendRateLimiter:
    def __init__(self, redis: RedisClient, prefix: str, limit: int, window_s: float = 10.0) -> None:
        self._redis = redis
        self._prefix = prefix
        self._capacity = limit
        self._rate = limit / window_s if limit else 0.0
        self._script = redis.register_script(_TAKE_TOKEN)
        self._fallback: dict[UUID, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self._capacity > 0

    async def allow(self, user: UUID) -> bool:
        if not self.enabled:
            return True
        now = time.time()
        try:
            taken = await self._script(
                keys=[f"{self._prefix}:ratelimit:send:{user}"],
                args=[self._capacity, self._rate, now],
            )
            return bool(taken)
        except Exception as exc:
            log.warning("rate limiting falls back to this replica: %s", exc)
            return self._allow_locally(user, now)

    def _allow_locally(self, user: UUID, now: float) -> bool:
        tokens, at = self._fallback.get(user, (float(self._capacity), now))
        tokens = min(self._capacity, tokens + (now - at) * self._rate)
        allowed = tokens >= 1
        self._fallback[user] = (tokens - 1 if allowed else tokens, now)
        return allowed
