"""The base of every hub namespace: authenticated connections and contract-shaped events."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from socketio.exceptions import ConnectionRefusedError as SocketRefused

from domain.identity import Role
from domain.tokens import InvalidToken, Principal, verify_access_token
from realtime.protocol import Ack, ErrorCode, EventError, Payload, parse

log = logging.getLogger(__name__)

_LIFECYCLE = frozenset({"connect", "disconnect"})


class AuthenticatedNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Refuses any connection without a valid access token (`connect_error: unauthorized`),
    and dispatches events to methods marked with `@event`, answering every one with an ack.

    `allowed_roles` narrows who may connect at all (the moderation namespace, for one).
    """

    allowed_roles: frozenset[Role] = frozenset(Role)
    _handlers: dict[str, tuple[str, type[Payload]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {
            marked[0]: (attribute, marked[1])
            for klass in reversed(cls.__mro__)
            for attribute, value in vars(klass).items()
            if (marked := getattr(value, "_event", None))
        }

    def __init__(self, namespace: str, *, jwt_secret: str) -> None:
        super().__init__(namespace)
        self._jwt_secret = jwt_secret
        # Who each connection is: read on every event, so kept here rather than in
        # python-socketio's session (two coroutine calls and a dict copy a read).
        self._principals: dict[str, Principal] = {}

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

    async def principal(self, sid: str) -> Principal:
        return self._principals[sid]

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in _LIFECYCLE:
            try:
                return await super().trigger_event(event, *args)
            finally:
                if event == "disconnect":
                    self._principals.pop(args[0], None)
        sid, payloads = args[0], args[1:]
        try:
            if event not in self._handlers:
                raise EventError(ErrorCode.invalid, f"unknown event {event!r}")
            if len(payloads) != 1:
                raise EventError(ErrorCode.invalid, "an event takes exactly one payload object")
            attribute, payload_type = self._handlers[event]
            handler: Callable[[str, Payload], Awaitable[Ack]] = getattr(self, attribute)
            return await handler(sid, parse(payload_type, payloads[0]))
        except EventError as refused:
            return refused.ack()
        except Exception:
            log.exception("%s %s failed", self.namespace, event)
            return EventError(ErrorCode.unavailable, "the server could not do this now").ack()
