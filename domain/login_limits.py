"""Login attempts limited per email and per client IP, in fixed one-minute windows in Redis.

Every attempt counts, successful or not: the limit is about guessing speed. Emails are hashed
in the keys so Redis never holds addresses.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

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
        """Count one attempt; raise RateLimited when either budget of this window is spent."""
        now = time.time() if now is None else now
        window = int(now // self.window_s)
        email_digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        email_key = f"{self.namespace}:login:email:{email_digest}:{window}"
        ip_key = f"{self.namespace}:login:ip:{ip}:{window}"
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in (email_key, ip_key):
                pipe.incr(key)
                pipe.expire(key, self.window_s)
            email_count, _, ip_count, _ = await pipe.execute()
        if email_count > self.per_email or ip_count > self.per_ip:
            retry_after_s = max(1, int((window + 1) * self.window_s - now))
            raise RateLimited("too many login attempts; try again later", retry_after_s)
