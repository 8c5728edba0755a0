"""Login attempts limited per email and per client IP over a sliding minute, in Redis.

Every attempt counts, successful or not: the limit is about guessing speed. Each key is a
sorted set of attempt times, so the limit holds over any 60 s (fixed windows would let twice
the budget through across a window's edge). Emails are hashed in the keys so Redis never
holds addresses.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from uuid import uuid4

import redis.asyncio as aioredis

from domain.errors import RateLimited


@dataclass(frozen=True)
class LoginLimiter:
    redis: aioredis.Redis
    namespace: str
    per_email: int = 10
    per_ip: int = 100
    window_s: int = 60

    async def hit(self, email: str, ip: str, *, now: float | None = None) -> None:
        """Count one attempt; raise RateLimited when either budget of the last window is spent."""
        now = time.time() if now is None else now
        email_digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        keys = (
            (f"{self.namespace}:login:email:{email_digest}", self.per_email),
            (f"{self.namespace}:login:ip:{ip}", self.per_ip),
        )
        attempt = f"{now}:{uuid4().hex}"
        async with self.redis.pipeline(transaction=True) as pipe:
            for key, _ in keys:
                pipe.zremrangebyscore(key, "-inf", now - self.window_s)
                pipe.zadd(key, {attempt: now})
                pipe.zcard(key)
                pipe.zrange(key, 0, 0, withscores=True)
                pipe.expire(key, self.window_s)
            replies = await pipe.execute()
        for index, (_, limit) in enumerate(keys):
            count, oldest = replies[5 * index + 2], replies[5 * index + 3]
            if count > limit:
                retry_after_s = max(1, int(oldest[0][1] + self.window_s - now) + 1)
                raise RateLimited("too many login attempts; try again later", retry_after_s)
