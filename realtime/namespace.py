"""The base of every hub namespace: a connection is authenticated before it exists."""

from __future__ import annotations

import logging
from typing import Any

import socketio
from socketio.exceptions import ConnectionRefusedError as SocketRefused

from domain.identity import Role
from domain.tokens import InvalidToken, Principal, verify_access_token

log = logging.getLogger(__name__)


class AuthenticatedNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    """Refuses any connection without a valid access token (`connect_error: unauthorized`).

    `allowed_roles` narrows who may connect at all (the moderation namespace, for one).
    """

    allowed_roles: frozenset[Role] = frozenset(Role)

    def __init__(self, namespace: str, *, jwt_secret: str) -> None:
        super().__init__(namespace)
        self._jwt_secret = jwt_secret

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = verify_access_token(token, self._jwt_secret)
        except InvalidToken as exc:
            log.info("refused %s connection: %s", self.namespace, exc)
            raise SocketRefused("unauthorized") from exc
        if principal.role not in self.allowed_roles:
            raise SocketRefused("forbidden")
        await self.save_session(sid, {"principal": principal})

    async def principal(self, sid: str) -> Principal:
        session = await self.get_session(sid)
        principal: Principal = session["principal"]
        return principal
