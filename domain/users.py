"""The users repository."""

from __future__ import annotations

import asyncpg

from domain.identity import NewUser, User, hash_password


class EmailTaken(Exception):
    """Another user already has this email address."""


_COLUMNS = "id, email, name, role"


async def create_user(conn: asyncpg.Connection | asyncpg.Pool, new_user: NewUser) -> User:
    try:
        row = await conn.fetchrow(
            f"INSERT INTO users (email, password_hash, name, role) VALUES ($1, $2, $3, $4) "
            f"RETURNING {_COLUMNS}",
            new_user.email,
            hash_password(new_user.password),
            new_user.name,
            new_user.role.value,
        )
    except asyncpg.UniqueViolationError as exc:
        raise EmailTaken(new_user.email) from exc
    assert row is not None
    return User(**dict(row))


async def get_user(conn: asyncpg.Connection | asyncpg.Pool, user_id: object) -> User | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
    return User(**dict(row)) if row else None
