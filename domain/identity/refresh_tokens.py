"""Refresh tokens: opaque, single-use, rotated on every refresh.

A token is `<id>.<secret>`; only a hash of the secret is stored. Each sign-in starts a family;
a refresh spends the presented token and issues its successor in the same family. Presenting a
spent token again means it was copied, so the whole family is revoked and the caller must sign
in again. Signing out revokes the family of the token presented.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from domain.db import Conn
from domain.errors import Unauthorized
from domain.identity import User
from domain.identity.users import get_user

REFRESH_TOKEN_TTL = timedelta(days=30)


class InvalidRefreshToken(Unauthorized):
    """Unknown, malformed, expired, revoked or already spent."""


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _parse(token: str) -> tuple[UUID, str]:
    token_id, _, secret = token.partition(".")
    try:
        return UUID(token_id), secret
    except ValueError as exc:
        raise InvalidRefreshToken("malformed refresh token") from exc


async def _insert(conn: Conn, user_id: UUID, family_id: UUID) -> str:
    secret = secrets.token_urlsafe(32)
    token_id: UUID = await conn.fetchval(
        "INSERT INTO refresh_tokens (family_id, user_id, secret_hash, expires_at) "
        "VALUES ($1, $2, $3, $4) RETURNING id",
        family_id,
        user_id,
        _hash(secret),
        datetime.now(UTC) + REFRESH_TOKEN_TTL,
    )
    return f"{token_id}.{secret}"


async def start_family(conn: Conn, user_id: UUID) -> str:
    """A fresh refresh token for a new sign-in."""
    return await _insert(conn, user_id, uuid4())


async def rotate(conn: Conn, token: str) -> tuple[User, str]:
    """Spend `token` and return its user and successor; revoke the family on reuse."""
    token_id, secret = _parse(token)
    reused = False
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT family_id, user_id, secret_hash, expires_at, used_at, revoked_at "
            "FROM refresh_tokens WHERE id = $1 FOR UPDATE",
            token_id,
        )
        if row is None or not hmac.compare_digest(row["secret_hash"], _hash(secret)):
            raise InvalidRefreshToken("unknown refresh token")
        if row["revoked_at"] is not None or row["expires_at"] <= datetime.now(UTC):
            raise InvalidRefreshToken("refresh token expired or revoked")
        if row["used_at"] is not None:
            reused = True
            await _revoke_family(conn, row["family_id"])
        else:
            await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = $1", token_id)
            found = await get_user(conn, row["user_id"])
            if found is None:
                raise InvalidRefreshToken("the user no longer exists")
            user = found
            successor = await _insert(conn, user.id, row["family_id"])
    # Raised after the commit: the revocation must outlive this refusal.
    if reused:
        raise InvalidRefreshToken("refresh token reused; its family is revoked")
    return user, successor


async def revoke(conn: Conn, token: str) -> None:
    """Sign out: revoke `token`'s family. Any token of the family will do, spent, expired or
    already revoked, so signing out twice is harmless; an unknown token is refused."""
    token_id, secret = _parse(token)
    row = await conn.fetchrow(
        "SELECT family_id, secret_hash FROM refresh_tokens WHERE id = $1", token_id
    )
    if row is None or not hmac.compare_digest(row["secret_hash"], _hash(secret)):
        raise InvalidRefreshToken("unknown refresh token")
    await _revoke_family(conn, row["family_id"])


async def _revoke_family(conn: Conn, family_id: UUID) -> None:
    async with conn.transaction():
        # Waits out a rotation in flight, so the UPDATE (a later snapshot) also sees the
        # successor it inserts; a rotation starting now waits for this and finds it revoked.
        await conn.execute(
            "SELECT 1 FROM refresh_tokens WHERE family_id = $1 FOR UPDATE", family_id
        )
        await conn.execute(
            "UPDATE refresh_tokens SET revoked_at = now() "
            "WHERE family_id = $1 AND revoked_at IS NULL",
            family_id,
        )
