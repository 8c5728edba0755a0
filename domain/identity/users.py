"""The users repository."""

from __future__ import annotations

import asyncio
from functools import lru_cache

import asyncpg

from domain.db import Db
from domain.errors import Conflict
from domain.identity import NewUser, User, hash_password, verify_password


class EmailTaken(Conflict):
    """Another user already has this email address."""


_COLUMNS = "id, email, name, role"


async def create_user(conn: Db, new_user: NewUser) -> User:
    # argon2 takes tens of milliseconds of CPU: hash off the event loop.
    password_hash = await asyncio.to_thread(hash_password, new_user.password)
    try:
        row = await conn.fetchrow(
            f"INSERT INTO users (email, password_hash, name, role) VALUES ($1, $2, $3, $4) "
            f"RETURNING {_COLUMNS}",
            new_user.email,
            password_hash,
            new_user.name,
            new_user.role.value,
        )
    except asyncpg.UniqueViolationError as exc:
        raise EmailTaken("a user with this email already exists") from exc
    assert row is not None
    return User(**dict(row))


async def get_user(conn: Db, user_id: object) -> User | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
    return User(**dict(row)) if row else None


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return hash_password("decoy password, never anyone's")


async def authenticate(conn: Db, email: str, password: str) -> User | None:
    """The user with these credentials, or None. An unknown email costs the same argon2
    verification as a wrong password, so timing does not reveal which emails exist."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, password_hash FROM users WHERE lower(email) = lower($1)", email
    )
    password_hash = row["password_hash"] if row else _decoy_hash()
    valid = await asyncio.to_thread(verify_password, password_hash, password)
    if row is None or not valid:
        return None
    return User(id=row["id"], email=row["email"], name=row["name"], role=row["role"])
