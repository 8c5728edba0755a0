"""What one user may ask of the hub: a budget per event kind, and how long a socket outlives
its access token.

Every event a client emits costs a token from the bucket of (user, namespace, event): up to
`capacity` at once, refilled at `capacity` per `window_s`. Past that the event is refused with
`rate_limited` and the connection stays up. The buckets are in this replica's memory, not in
Redis: the hot events (`typing`, `signal`, `stats`) would otherwise cost a Redis round trip
each, and a user's budget counted per replica is bounded anyway, because the connections a
user can hold (to however many replicas) are bounded by the per-IP connection cap. `send` is
the exception: its budget (CHAT_RATE_LIMIT) is shared by every replica through Redis
(realtime.rate_limit), since messages are stored and fanned out.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Budget:
    """`capacity` events in a burst, refilled at `capacity` per `window_s` seconds."""

    capacity: int
    window_s: float


NamespaceBudgets = Mapping[str, Budget | None]  # event -> its budget; None: limited elsewhere

# `auth`: a client renews its token every few minutes. Every namespace has it; each declares
# the budgets of its own events (AuthenticatedNamespace.budgets), generous for real clients: a
# web client joins every conversation it lists when it connects, trickles 50+ ICE candidates per
# offer, reports call stats every second or two and sends `typing` a few times a second at most.
RENEW = Budget(10, 60)

SESSION_GRACE_S = 30.0  # how long a socket outlives its token, for the client to renew it


@dataclass(frozen=True)
class SocketLimits:
    """The limits every namespace of a hub applies: `budgets` replaces the budgets a namespace
    declares, by namespace (tests start hubs with tight ones)."""

    budgets: Mapping[str, NamespaceBudgets] = field(default_factory=dict)
    session_grace_s: float = SESSION_GRACE_S


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class EventBudgets:
    """The token buckets of one namespace on this replica, keyed by (user, event).

    A bucket left alone for its longest window is full again, as good as none: buckets are
    kept least recently used first and those idle that long are dropped as others are taken,
    so memory follows the users active in the last window, not everyone ever seen.
    """

    def __init__(self, namespace: str, budgets: NamespaceBudgets) -> None:
        self._namespace = namespace
        self._budgets = dict(budgets)
        self._idle_s = max((b.window_s for b in self._budgets.values() if b), default=0.0)
        self._buckets: OrderedDict[tuple[UUID, str], _Bucket] = OrderedDict()

    def require(self, events: Iterable[str]) -> None:
        """Raise ValueError unless every one of `events` has a budget (or None)."""
        missing = sorted(set(events) - self._budgets.keys())
        if missing:
            raise ValueError(f"events of {self._namespace} without a budget: {missing}")

    def allow(self, user: UUID, event: str) -> bool:
        """Take a token for `event` from `user`'s bucket; False when it is empty."""
        budget = self._budgets[event]
        if budget is None:
            return True
        now = time.monotonic()
        self._forget_idle(now)
        key = (user, event)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(budget.capacity, now)
        else:
            self._buckets.move_to_end(key)
            refill = (now - bucket.at) * budget.capacity / budget.window_s
            bucket.tokens = min(budget.capacity, bucket.tokens + refill)
            bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget_idle(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if now - oldest.at < self._idle_s:
                return
            buckets.popitem(last=False)
