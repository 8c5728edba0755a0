"""Access tokens: HS256 JWTs carrying the user's id, name and role.

The REST service issues them and the hub verifies them at connect, with this one module.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from uuid import UUID

import jwt
from pydantic import BaseModel, ConfigDict, ValidationError

from domain.errors import Unauthorized
from domain.identity import Role, User

ACCESS_TOKEN_TTL = timedelta(minutes=15)
_ALGORITHM = "HS256"
_ISSUER = "pawhub"


class InvalidToken(Unauthorized):
    """The token is missing, forged, expired or not an access token."""


class Principal(BaseModel):
    """Who an access token speaks for."""

    model_config = ConfigDict(frozen=True)

    user_id: UUID
    name: str
    role: Role
    expires_at: datetime | None = None  # the token's expiry (None: not from a token)


def issue_access_token(
    user: User, secret: str, *, now: datetime | None = None, ttl: timedelta = ACCESS_TOKEN_TTL
) -> str:
    issued_at = now or datetime.now(UTC)
    claims = {
        "sub": str(user.id),
        "name": user.name,
        "role": user.role.value,
        "typ": "access",
        "iss": _ISSUER,
        "iat": issued_at,
        "exp": issued_at + ttl,
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def verify_access_token(token: object, secret: str, *, now: datetime | None = None) -> Principal:
    """Return the principal of a valid access token; raise InvalidToken otherwise.

    A token's signature is checked once and remembered (every request and connection of a
    client presents the same token for 15 minutes); its expiry is checked on every call.
    """
    if not isinstance(token, str) or not token:
        raise InvalidToken("no token")
    principal, expires_at = _verified(token, secret)
    if (now or datetime.now(UTC)).timestamp() >= expires_at:
        raise InvalidToken("the token has expired")
    return principal


@lru_cache(maxsize=50_000)
def _verified(token: str, secret: str) -> tuple[Principal, float]:
    # Only valid tokens are cached: a refusal raises, and lru_cache keeps no exceptions.
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
        if claims.get("typ") != "access":
            raise InvalidToken("not an access token")
        expires_at = float(claims["exp"])
        principal = Principal(
            user_id=claims["sub"],
            name=claims["name"],
            role=claims["role"],
            expires_at=datetime.fromtimestamp(expires_at, UTC),
        )
        return principal, expires_at
    except (jwt.PyJWTError, KeyError, ValidationError) as exc:
        raise InvalidToken(str(exc)) from exc
