"""Authentication: every route needs `Authorization: Bearer <access token>` unless it opts out
with `opt={"exclude_from_auth": True}`; its principal is then `request.user`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from litestar.openapi.spec import Reference, SecurityScheme

from domain.audit import Actor
from domain.tokens import InvalidToken, Principal, verify_access_token

BEARER = "BearerToken"
SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    BEARER: SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
}
SECURED: list[dict[str, list[str]]] = [{BEARER: []}]
PUBLIC = {"exclude_from_auth": True}

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException("a bearer access token is required", headers=_CHALLENGE)
        try:
            principal = verify_access_token(token.strip(), connection.app.state.settings.jwt_secret)
        except InvalidToken as exc:
            raise NotAuthorizedException(
                "the access token is invalid or expired", headers=_CHALLENGE
            ) from exc
        return AuthenticationResult(user=principal, auth=token)


bearer_auth = DefineMiddleware(BearerTokenMiddleware, exclude=["^/healthz$", "^/schema"])


async def provide_connection(state: State) -> AsyncIterator[asyncpg.Connection]:
    async with state.pool.acquire() as conn:
        yield conn


def provide_principal(request: Request[Principal, str, State]) -> Principal:
    return request.user


def provide_actor(request: Request[Principal, str, State]) -> Actor:
    """The caller as the audit log records them."""
    client = request.client
    return Actor(
        user_id=request.user.user_id,
        ip=client.host if client else None,
        user_agent=request.headers.get("user-agent", "")[:500] or None,
    )


Db = NamedDependency[asyncpg.Connection]
CurrentPrincipal = NamedDependency[Principal]
CurrentActor = NamedDependency[Actor]

dependencies = {
    "db": Provide(provide_connection),
    "principal": Provide(provide_principal, sync_to_thread=False),
    "actor": Provide(provide_actor, sync_to_thread=False),
}
