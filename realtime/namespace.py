"""The base of every hub namespace: authenticated connections and contract-shaped events."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ClassVar

import socketio
from pydantic import Field
from socketio.exceptions import ConnectionRefusedError as SocketRefused

from domain.identity import Role
from domain.identity.tokens import InvalidToken, Principal, verify_access_token
from realtime.limits import RENEW, EventBudgets, NamespaceBudgets, SocketLimits
from realtime.protocol import Ack, ErrorCode, EventError, Payload, event, ok, parse, refusal
from realtime.sessions import SessionDeadlines

log = logging.getLogger(__name__)

_LIFECYCLE = frozenset({"connect", "disconnect"})
_MAX_TOKEN_CHARS = 8192


def _expiry(principal: Principal) -> datetime:
    assert principal.expires_at is not None, "every access token expires"
    return principal.expires_at


class AuthPayload(Payload):
    token: str = Field(min_length=1, max_length=_MAX_TOKEN_CHARS)


def _marked_handlers(cls: type) -> dict[str, tuple[str, type[Payload]]]:
    return {
        marked[0]: (attribute, marked[1])
        for klass in reversed(cls.__mro__)
        for attribute, value in vars(klass).items()
        if (marked := getattr(value, "_event", None))
    }


class AuthenticatedNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Refuses any connection without a valid access token (`connect_error: unauthorized`),
    and dispatches events to methods marked with `@event`, answering every one with an ack: a
    handler's result, or the error ack of the refusal it raised (an EventError, or a domain
    error by its kind: `realtime.protocol.refusal`), or `unavailable` for a failure.

    Each event first takes a token from the user's budget for it (realtime.limits), else it is
    refused with `rate_limited`. A connection lives as long as its access token plus a grace:
    the client renews it with `auth {token}`; otherwise it gets `expired {}` and is
    disconnected from the namespace (realtime.sessions: no task or timer per connection).

    `allowed_roles` narrows who may connect at all (the moderation namespace, for one).
    """

    allowed_roles: frozenset[Role] = frozenset(Role)
    # Each event's budget: a namespace adds its own events to these.
    budgets: ClassVar[NamespaceBudgets] = {"auth": RENEW}
    _handlers: dict[str, tuple[str, type[Payload]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = _marked_handlers(cls)

    def __init__(self, namespace: str, *, jwt_secret: str) -> None:
        super().__init__(namespace)
        self._jwt_secret = jwt_secret
        # Who each connection is: read on every event, so kept here rather than in
        # python-socketio's session (two coroutine calls and a dict copy a read).
        self._principals: dict[str, Principal] = {}
        self._deadlines = SessionDeadlines(self._expired)
        self._ending: set[asyncio.Task[None]] = set()
        self.limit(SocketLimits())

    def limit(self, limits: SocketLimits) -> None:
        """Apply `limits` (the budgets they give this namespace, else its own): every event of
        the namespace must have a budget."""
        budgets = EventBudgets(self.namespace, limits.budgets.get(self.namespace, self.budgets))
        budgets.require(self._handlers)
        self._budgets = budgets
        self._grace_s = limits.session_grace_s

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = verify_access_token(token, self._jwt_secret)
        except InvalidToken as exc:
            log.info("refused %s connection: %s", self.namespace, exc)
            raise SocketRefused("unauthorized") from exc
        if principal.role not in self.allowed_roles:
            raise SocketRefused("forbidden")
        self._principals[sid] = principal
        self._deadlines.add(sid, self._deadline(principal))

    async def principal(self, sid: str) -> Principal:
        return self._principals[sid]

    @event("auth", AuthPayload)
    async def renew(self, sid: str, payload: AuthPayload) -> Ack:
        """Carry the connection on with a fresh access token of the same user."""
        try:
            principal = verify_access_token(payload.token, self._jwt_secret)
        except InvalidToken as exc:
            raise EventError(ErrorCode.unauthorized, f"the token is not valid: {exc}") from exc
        current = self._principals[sid]
        if principal.user_id != current.user_id:
            raise EventError(ErrorCode.forbidden, "the token is another user's")
        if principal.role not in self.allowed_roles:
            raise EventError(ErrorCode.forbidden, "this namespace is not for your role")
        self._deadlines.discard(sid, self._deadline(current))
        self._principals[sid] = principal
        self._deadlines.add(sid, self._deadline(principal))
        return ok(expires_at=_expiry(principal).isoformat())

    def _deadline(self, principal: Principal) -> float:
        """When the session ends: the grace after its token expires."""
        return _expiry(principal).timestamp() + self._grace_s

    def _expired(self, sid: str) -> None:
        task = asyncio.ensure_future(self._end_session(sid))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _end_session(self, sid: str) -> None:
        principal = self._principals.get(sid)
        if principal is None or self._deadline(principal) > time.time():
            return  # gone, or renewed while this was scheduled
        log.info("%s session %s ended: its token expired", self.namespace, sid)
        await self.emit("expired", {}, to=sid)
        await self.disconnect(sid)  # which writes `expired` first

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in _LIFECYCLE:
            try:
                return await super().trigger_event(event, *args)
            finally:
                if event == "disconnect" and (gone := self._principals.pop(args[0], None)):
                    self._deadlines.discard(args[0], self._deadline(gone))
        sid, payloads = args[0], args[1:]
        try:
            if event not in self._handlers:
                raise EventError(ErrorCode.invalid, f"unknown event {event!r}")
            if not self._budgets.allow(self._principals[sid].user_id, event):
                raise EventError(ErrorCode.rate_limited, f"too many {event} events; slow down")
            if len(payloads) != 1:
                raise EventError(ErrorCode.invalid, "an event takes exactly one payload object")
            attribute, payload_type = self._handlers[event]
            handler: Callable[[str, Payload], Awaitable[Ack]] = getattr(self, attribute)
            return await handler(sid, parse(payload_type, payloads[0]))
        except Exception as error:
            if refused := refusal(error):
                return refused.ack()
            log.exception("%s %s failed", self.namespace, event)
            return EventError(ErrorCode.unavailable, "the server could not do this now").ack()


AuthenticatedNamespace._handlers = _marked_handlers(AuthenticatedNamespace)
