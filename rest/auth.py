"""Authentication: every route needs `Authorization: Bearer <access token>` unless it opts out
with `opt={"exclude_from_auth": True}`; its principal is then `request.user`."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Sequence
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
from pydantic import IPvAnyNetwork

from domain.audit import Actor
from domain.identity.tokens import InvalidToken, Principal, verify_access_token
from domain.rate_limits import RateLimits

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


def forwarded_client(peer: str, forwarded_for: str, trusted: Sequence[IPvAnyNetwork]) -> str:
    """The client behind `peer`: the peer itself unless it is a trusted proxy, else the nearest
    X-Forwarded-For hop (read from the right, as each proxy appends) that is not one. Hops left
    of it were written by the client and prove nothing."""
    if not _is_trusted(peer, trusted):
        return peer
    client = peer
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # a trusted proxy would not write this: keep the last good hop
        client = hop
        if not _is_trusted(hop, trusted):
            break
    return client


def _is_trusted(address: str, trusted: Sequence[IPvAnyNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The caller's address as rate limits and the audit log see it (TRUSTED_PROXIES)."""
    peer = connection.client.host if connection.client else "unknown"
    forwarded_for = ",".join(connection.headers.getall("x-forwarded-for", []))
    return forwarded_client(peer, forwarded_for, connection.app.state.settings.trusted_proxies)


def provide_principal(request: Request[Principal, str, State]) -> Principal:
    return request.user


def provide_actor(request: Request[Principal, str, State]) -> Actor:
    """The caller as the audit log records them."""
    return Actor(
        user_id=request.user.user_id,
        ip=client_ip(request) if request.client else None,
        user_agent=request.headers.get("user-agent", "")[:500] or None,
    )


def provide_rate_limits(state: State) -> RateLimits:
    return RateLimits(state.redis, state.settings.redis_namespace)


Db = NamedDependency[asyncpg.Connection]
CurrentPrincipal = NamedDependency[Principal]
CurrentActor = NamedDependency[Actor]
Limits = NamedDependency[RateLimits]

dependencies = {
    "db": Provide(provide_connection),
    "principal": Provide(provide_principal, sync_to_thread=False),
    "actor": Provide(provide_actor, sync_to_thread=False),
    "limits": Provide(provide_rate_limits, sync_to_thread=False),
}
