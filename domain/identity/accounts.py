"""Accounts: users, their roles and their passwords."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from domain.fields import NO_NUL

_hasher = PasswordHasher()


class Role(StrEnum):
    owner = "owner"
    vet = "vet"
    moderator = "moderator"
    admin = "admin"


class User(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    email: str
    name: str
    role: Role


class NewUser(BaseModel):
    """What it takes to create a user; validated before anything is stored."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(min_length=8, max_length=256)
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    role: Role = Role.owner


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
